// workflow: the current organization's items; switching organization empties them (lib/use-crud.ts).
import { defineStore } from "pinia";
import { useCrud } from "@/lib/use-crud";
import { workflowApi } from "@/api/workflow.api";

export const useWorkflowStore = defineStore("workflow", () => {
	const items = useCrud(workflowApi);
	return {
		items: items.items,
		loading: items.loading,
		error: items.error,
		load: items.load,
		create: items.create,
		remove: items.remove
	};
});
