// embeddings: collections of chunked documents bound to an embedding model (the built-in lexical one or an AI
// deployment), their ingest and re-embed jobs with live progress, and a search playground showing the scores.
import type { AppModule } from "./types";

export const embeddingsModule: AppModule = {
	name: "embeddings",
	// In the AI section, after prompts.
	order: 38,
	routes: [
		{
			// The collections and, with an id, one collection: documents, jobs, search.
			path: "embeddings/:id?",
			name: "embeddings",
			component: () => import("@/pages/embeddings/EmbeddingsPage.vue"),
			meta: { title: "Embeddings", permission: "embeddings:read" }
		}
	],
	nav: [{ route: "embeddings", label: "Embeddings", icon: "team", section: "AI", permission: "embeddings:read" }]
};
