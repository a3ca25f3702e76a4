// usage: the organization's metered AI usage (over time, by model, user and key; cost breakdown; CSV) and its price
// list. One route per page, so pages of the usage module added later join the list.
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
			path: "usage/pricing",
			name: "usage-pricing",
			component: () => import("@/pages/usage/PricingPage.vue"),
			meta: { title: "Usage pricing", permission: "usage:read" }
		},
		{
			path: "usage/limits",
			name: "usage-limits",
			component: () => import("@/pages/usage/LimitsPage.vue"),
			meta: { title: "Quotas and budgets", permission: "usage:read" }
		}
	],
	nav: [
		{ route: "usage", label: "Usage", icon: "activity", section: "Usage", permission: "usage:read" },
		{
			route: "usage-limits",
			label: "Quotas and budgets",
			icon: "chevrons",
			section: "Usage",
			permission: "usage:read"
		},
		{ route: "usage-pricing", label: "Usage pricing", icon: "settings", section: "Usage", permission: "usage:read" }
	]
};
