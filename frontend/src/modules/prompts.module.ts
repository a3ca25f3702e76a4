// prompts: the organization's prompt templates.
import type { AppModule } from "./types";

export const promptsModule: AppModule = {
	name: "prompts",
	order: 100,
	routes: [
		{
			path: "prompts",
			name: "prompts",
			component: () => import("@/pages/prompts/PromptsPage.vue"),
			meta: { title: "Prompts", permission: "prompts:read" }
		}
	],
	nav: [{ route: "prompts", label: "Prompts", icon: "code", permission: "prompts:read" }]
};
