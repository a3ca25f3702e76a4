// mcp: the current organization's items; switching organization empties them (lib/use-crud.ts).
import { defineStore } from "pinia";
import { useCrud } from "@/lib/use-crud";
import { mcpApi } from "@/api/mcp.api";

export const useMcpStore = defineStore("mcp", () => {
	const items = useCrud(mcpApi);
	return {
		items: items.items,
		loading: items.loading,
		error: items.error,
		load: items.load,
		create: items.create,
		remove: items.remove
	};
});
