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
		}
	],
	nav: [{ route: "usage", label: "Usage", icon: "code", permission: "usage:read" }]
};
