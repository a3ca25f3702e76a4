// knowledge: the current organization's items; switching organization empties them (lib/use-crud.ts).
import { defineStore } from "pinia";
import { useCrud } from "@/lib/use-crud";
import { knowledgeApi } from "@/api/knowledge.api";

export const useKnowledgeStore = defineStore("knowledge", () => {
	const items = useCrud(knowledgeApi);
	return {
		items: items.items,
		loading: items.loading,
		error: items.error,
		load: items.load,
		create: items.create,
		remove: items.remove
	};
});
