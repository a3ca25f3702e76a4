// organizations: settings of the current organization: members and roles, teams, API keys.
import type { AppModule } from "./types";

const section = "Organization";

export const organizationsModule: AppModule = {
	name: "organizations",
	order: 10,
	routes: [
		{ path: "organization", redirect: { name: "organization-members" } },
		{
			path: "organization/members",
			name: "organization-members",
			component: () => import("@/pages/organizations/MembersPage.vue"),
			meta: { title: "Members", permission: "members:read" }
		},
		{
			path: "organization/teams/:teamId?",
			name: "organization-teams",
			component: () => import("@/pages/organizations/TeamsPage.vue"),
			meta: { title: "Teams", permission: "teams:read" }
		},
		{
			path: "organization/api-keys",
			name: "organization-api-keys",
			component: () => import("@/pages/organizations/ApiKeysPage.vue"),
			meta: { title: "API keys", permission: "api-keys:read" }
		},
		{
			path: "organization/settings",
			name: "organization-settings",
			component: () => import("@/pages/organizations/SettingsPage.vue"),
			meta: { title: "Settings", permission: "organizations:read" }
		}
	],
	nav: [
		{ route: "organization-members", label: "Members", icon: "users", section, permission: "members:read" },
		{ route: "organization-teams", label: "Teams", icon: "team", section, permission: "teams:read" },
		{ route: "organization-api-keys", label: "API keys", icon: "key", section, permission: "api-keys:read" },
		{
			route: "organization-settings",
			label: "Settings",
			icon: "settings",
			section,
			permission: "organizations:read"
		}
	]
};
