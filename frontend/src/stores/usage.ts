// usage: the current organization's items; switching organization empties them (lib/use-crud.ts).
import { defineStore } from "pinia";
import { useCrud } from "@/lib/use-crud";
import { usageApi } from "@/api/usage.api";

export const useUsageStore = defineStore("usage", () => {
	const items = useCrud(usageApi);
	return {
		items: items.items,
		loading: items.loading,
		error: items.error,
		load: items.load,
		create: items.create,
		remove: items.remove
	};
});
