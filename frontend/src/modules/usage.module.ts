// usage: the organization's items.
import type { AppModule } from "./types";

export const usageModule: AppModule = {
	name: "usage",
	order: 100,
	routes: [
		{
			path: "usage",
			name: "usage",
			component: () => import("@/pages/usage/UsagePage.vue"),
			meta: { title: "Usage", permission: "usage:read" }
		},
		{
			path: "usage/limits",
			name: "usage-limits",
			component: () => import("@/pages/usage/LimitsPage.vue"),
			meta: { title: "Quotas and budgets", permission: "usage:read" }
		}
	],
	nav: [
		{ route: "usage", label: "Usage", icon: "code", permission: "usage:read" },
		{ route: "usage-limits", label: "Quotas and budgets", icon: "chevrons", permission: "usage:read" }
	]
};
