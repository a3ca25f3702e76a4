// workflow: versioned DAGs of steps (webhooks, AI, agents, tool calls, approvals, conditions, waits): the list,
// the graph editor with its run history, and one run's live graph beside execution's timeline.
import type { AppModule } from "./types";

export const workflowModule: AppModule = {
	name: "workflow",
	// After execution, whose runs a workflow starts.
	order: 102,
	routes: [
		{
			path: "workflows",
			name: "workflow",
			component: () => import("@/pages/workflow/WorkflowsPage.vue"),
			meta: { title: "Workflows", permission: "workflow:read" }
		},
		{
			// "new" opens the editor empty.
			path: "workflows/:id",
			name: "workflow-editor",
			component: () => import("@/pages/workflow/WorkflowPage.vue"),
			meta: { title: "Workflow", permission: "workflow:read" }
		},
		{
			path: "workflows/:id/runs/:runId",
			name: "workflow-run",
			component: () => import("@/pages/workflow/WorkflowRunPage.vue"),
			meta: { title: "Workflow run", permission: "workflow:read" }
		}
	],
	nav: [{ route: "workflow", label: "Workflows", icon: "activity", permission: "workflow:read" }]
};
