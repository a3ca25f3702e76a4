// mcp: the current organization's MCP servers; switching organization empties them (lib/use-crud.ts).
import { defineStore } from "pinia";
import { useCrud } from "@/lib/use-crud";
import { mcpServersApi } from "@/api/mcp.api";

export const useMcpStore = defineStore("mcp", () => {
	const servers = useCrud(mcpServersApi);
	return {
		servers: servers.items,
		loading: servers.loading,
		error: servers.error,
		load: servers.load,
		create: servers.create,
		update: servers.update,
		remove: servers.remove
	};
});
