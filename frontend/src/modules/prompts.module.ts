// prompts: the organization's prompt templates: versions that never change, labels that point at them, the shared
// templates every organization sees (and overrides), with a live preview and a "Try it" against the AI gateway.
import type { AppModule } from "./types";

export const promptsModule: AppModule = {
	name: "prompts",
	// After the AI section, whose models the templates use.
	order: 35,
	routes: [
		{
			// The list and, with an id, one template's editor.
			path: "prompts/:id?",
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
		{ route: "prompts", label: "Prompts", icon: "code", section: "AI", permission: "prompts:read" },
		{
			route: "prompts-experiments",
			label: "Prompt experiments",
			icon: "flask",
			section: "AI",
			permission: "prompts:read"
		}
	]
};
