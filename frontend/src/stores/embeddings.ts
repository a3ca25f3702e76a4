// embeddings: the current organization's items; switching organization empties them (lib/use-crud.ts).
import { defineStore } from "pinia";
import { useCrud } from "@/lib/use-crud";
import { embeddingsApi } from "@/api/embeddings.api";

export const useEmbeddingsStore = defineStore("embeddings", () => {
	const items = useCrud(embeddingsApi);
	return {
		items: items.items,
		loading: items.loading,
		error: items.error,
		load: items.load,
		create: items.create,
		remove: items.remove
	};
});
