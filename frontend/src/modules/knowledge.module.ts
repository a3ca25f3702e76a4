// knowledge: Markdown articles in nested categories with per-category permissions, revisions with diffs, and
// search over what the reader may read.
import type { AppModule } from "./types";

export const knowledgeModule: AppModule = {
	name: "knowledge",
	order: 60,
	routes: [
		{
			path: "knowledge/search",
			name: "knowledge-search",
			component: () => import("@/pages/knowledge/KnowledgeSearchPage.vue"),
			meta: { title: "Knowledge search", permission: "knowledge:read" }
		},
		{
			// The categories and articles and, with an id, one article.
			path: "knowledge/:id?",
			name: "knowledge",
			component: () => import("@/pages/knowledge/KnowledgePage.vue"),
			meta: { title: "Knowledge", permission: "knowledge:read" }
		}
	],
	nav: [
		{ route: "knowledge", label: "Knowledge", icon: "book", permission: "knowledge:read" },
		{ route: "knowledge-search", label: "Knowledge search", icon: "search", permission: "knowledge:read" }
	]
};
