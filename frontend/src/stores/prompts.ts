// prompts: the templates the current organization sees; switching organization empties them (lib/use-crud.ts).
import { defineStore } from "pinia";
import { useCrud } from "@/lib/use-crud";
import { promptsApi } from "@/api/prompts.api";

export const usePromptsStore = defineStore("prompts", () => {
	const items = useCrud(promptsApi);
	return {
		items: items.items,
		loading: items.loading,
		error: items.error,
		load: items.load,
		create: items.create,
		remove: items.remove
	};
});
