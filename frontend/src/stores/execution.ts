// execution: the current organization's items; switching organization empties them (lib/use-crud.ts).
import { defineStore } from "pinia";
import { useCrud } from "@/lib/use-crud";
import { executionApi } from "@/api/execution.api";

export const useExecutionStore = defineStore("execution", () => {
	const items = useCrud(executionApi);
	return {
		items: items.items,
		loading: items.loading,
		error: items.error,
		load: items.load,
		create: items.create,
		remove: items.remove
	};
});
