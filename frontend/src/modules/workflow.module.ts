// workflow: the organization's items.
import type { AppModule } from "./types";

export const workflowModule: AppModule = {
	name: "workflow",
	order: 100,
	routes: [
		{
			path: "workflow",
			name: "workflow",
			component: () => import("@/pages/workflow/WorkflowPage.vue"),
			meta: { title: "Workflow", permission: "workflow:read" }
		}
	],
	nav: [{ route: "workflow", label: "Workflow", icon: "code", permission: "workflow:read" }]
};
