// execution: the organization's items.
import type { AppModule } from "./types";

export const executionModule: AppModule = {
	name: "execution",
	order: 100,
	routes: [
		{
			path: "execution",
			name: "execution",
			component: () => import("@/pages/execution/ExecutionPage.vue"),
			meta: { title: "Execution", permission: "execution:read" }
		}
	],
	nav: [{ route: "execution", label: "Execution", icon: "code", permission: "execution:read" }]
};
