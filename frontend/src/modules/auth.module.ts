// auth: settings of the current organization: members and roles, teams, API keys (sign-in, sign-up and the account
// page are the shell's own routes, router.ts).
import type { AppModule } from "./types";

const section = "Organization";

export const authModule: AppModule = {
	name: "auth",
	order: 10,
	routes: [
		{ path: "organization", redirect: { name: "organization-members" } },
		{
			path: "organization/members",
			name: "organization-members",
			component: () => import("@/pages/auth/MembersPage.vue"),
			meta: { title: "Members", permission: "auth:members-read" }
		},
		{
			path: "organization/teams/:teamId?",
			name: "organization-teams",
			component: () => import("@/pages/auth/TeamsPage.vue"),
			meta: { title: "Teams", permission: "auth:teams-read" }
		},
		{
			path: "organization/api-keys",
			name: "organization-api-keys",
			component: () => import("@/pages/auth/ApiKeysPage.vue"),
			meta: { title: "API keys", permission: "auth:api-keys-read" }
		},
		{
			path: "organization/settings",
			name: "organization-settings",
			component: () => import("@/pages/auth/SettingsPage.vue"),
			meta: { title: "Settings", permission: "auth:organizations-read" }
		}
	],
	nav: [
		{ route: "organization-members", label: "Members", icon: "users", section, permission: "auth:members-read" },
		{ route: "organization-teams", label: "Teams", icon: "team", section, permission: "auth:teams-read" },
		{ route: "organization-api-keys", label: "API keys", icon: "key", section, permission: "auth:api-keys-read" },
		{
			route: "organization-settings",
			label: "Settings",
			icon: "settings",
			section,
			permission: "auth:organizations-read"
		}
	]
};
