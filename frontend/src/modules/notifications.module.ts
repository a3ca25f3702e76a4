// notifications: the organization's items.
import type { AppModule } from "./types";

export const notificationsModule: AppModule = {
	name: "notifications",
	order: 100,
	routes: [
		{
			path: "notifications",
			name: "notifications",
			component: () => import("@/pages/notifications/NotificationsPage.vue"),
			meta: { title: "Notifications", permission: "notifications:read" }
		}
	],
	nav: [{ route: "notifications", label: "Notifications", icon: "code", permission: "notifications:read" }]
};
