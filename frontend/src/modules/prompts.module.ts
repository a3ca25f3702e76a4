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
		},
		// Experiments: the list, and one experiment's dashboard.
		{
			path: "prompts/experiments/:id?",
			name: "prompts-experiments",
			component: () => import("@/pages/prompts/ExperimentsPage.vue"),
			meta: { title: "Prompt experiments", permission: "prompts:read" }
		}
	],
	nav: [
		{ route: "prompts", label: "Prompts", icon: "code", permission: "prompts:read" },
		{ route: "prompts-experiments", label: "Experiments", icon: "flask", permission: "prompts:read" }
	]
};
