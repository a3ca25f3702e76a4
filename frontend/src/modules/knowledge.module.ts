// knowledge: the organization's items.
import type { AppModule } from "./types";

export const knowledgeModule: AppModule = {
	name: "knowledge",
	order: 100,
	routes: [
		{
			path: "knowledge",
			name: "knowledge",
			component: () => import("@/pages/knowledge/KnowledgePage.vue"),
			meta: { title: "Knowledge", permission: "knowledge:read" }
		}
	],
	nav: [{ route: "knowledge", label: "Knowledge", icon: "code", permission: "knowledge:read" }]
};
