// embeddings: the organization's items.
import type { AppModule } from "./types";

export const embeddingsModule: AppModule = {
	name: "embeddings",
	order: 100,
	routes: [
		{
			path: "embeddings",
			name: "embeddings",
			component: () => import("@/pages/embeddings/EmbeddingsPage.vue"),
			meta: { title: "Embeddings", permission: "embeddings:read" }
		}
	],
	nav: [{ route: "embeddings", label: "Embeddings", icon: "code", permission: "embeddings:read" }]
};
