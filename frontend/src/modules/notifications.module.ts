// notifications: the bell in the top bar (every page), the inbox, one's own preferences and, for admins, the
// organization's e-mail and webhook channels and its templates.
import NotificationsBell from "@/components/notifications/NotificationsBell.vue";
import type { AppModule } from "./types";

const section = "Notifications";

export const notificationsModule: AppModule = {
	name: "notifications",
	order: 90,
	routes: [
		{
			path: "notifications",
			name: "notifications",
			component: () => import("@/pages/notifications/NotificationsPage.vue"),
			meta: { title: "Inbox", permission: "notifications:read" }
		},
		{
			path: "notifications/preferences",
			name: "notifications-preferences",
			component: () => import("@/pages/notifications/PreferencesPage.vue"),
			meta: { title: "Notification preferences", permission: "notifications:read" }
		},
		{
			path: "notifications/channels",
			name: "notifications-channels",
			component: () => import("@/pages/notifications/ChannelsPage.vue"),
			meta: { title: "Notification channels", permission: "notifications:manage" }
		},
		{
			path: "notifications/templates",
			name: "notifications-templates",
			component: () => import("@/pages/notifications/TemplatesPage.vue"),
			meta: { title: "Notification templates", permission: "notifications:manage" }
		}
	],
	nav: [
		{ route: "notifications", label: "Inbox", icon: "bell", section, permission: "notifications:read" },
		{
			route: "notifications-preferences",
			label: "Notification preferences",
			icon: "settings",
			section,
			permission: "notifications:read"
		},
		{
			route: "notifications-channels",
			label: "Notification channels",
			icon: "plug",
			section,
			permission: "notifications:manage"
		},
		{
			route: "notifications-templates",
			label: "Notification templates",
			icon: "code",
			section,
			permission: "notifications:manage"
		}
	],
	header: [{ component: NotificationsBell, permission: "notifications:read" }]
};
