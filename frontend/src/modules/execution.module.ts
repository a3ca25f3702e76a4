// execution: runs of approved plans with their live step timeline, approvals and rollback.
import type { AppModule } from "./types";

export const executionModule: AppModule = {
	name: "execution",
	order: 101,
	routes: [
		{
			path: "execution",
			name: "execution",
			component: () => import("@/pages/execution/ExecutionPage.vue"),
			meta: { title: "Execution", permission: "execution:read" }
		}
	],
	nav: [{ route: "execution", label: "Execution", icon: "activity", permission: "execution:read" }]
};
