// planning: board, list, roadmap and plans of the organization.
import type { AppModule } from "./types";

export const planningModule: AppModule = {
	name: "planning",
	order: 100,
	routes: [
		{
			path: "planning",
			name: "planning",
			component: () => import("@/pages/planning/PlanningPage.vue"),
			meta: { title: "Planning", permission: "planning:read" }
		}
	],
	nav: [{ route: "planning", label: "Planning", icon: "code", permission: "planning:read" }]
};
