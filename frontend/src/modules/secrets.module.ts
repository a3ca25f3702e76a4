// secrets: the organization's vault: secrets per environment with versions, reveal, grants, the audit log, .env
// import/export and the vault's settings. Values are shown only on request and only to who may read them.
import type { AppModule } from "./types";

const section = "Secrets";

export const secretsModule: AppModule = {
	name: "secrets",
	order: 20,
	routes: [
		{
			// The list (?env=<environment>) and, with an id, one secret.
			path: "secrets/:id?",
			name: "secrets",
			component: () => import("@/pages/secrets/SecretsPage.vue"),
			meta: { title: "Secrets", permission: "secrets:read" }
		},
		{
			path: "secrets/compare",
			name: "secrets-compare",
			component: () => import("@/pages/secrets/ComparePage.vue"),
			meta: { title: "Compare environments", permission: "secrets:read" }
		},
		{
			path: "secrets/access",
			name: "secrets-access",
			component: () => import("@/pages/secrets/AccessPage.vue"),
			meta: { title: "Access grants", permission: "secrets:manage" }
		},
		{
			path: "secrets/audit",
			name: "secrets-audit",
			component: () => import("@/pages/secrets/AuditPage.vue"),
			meta: { title: "Audit log", permission: "secrets:manage" }
		},
		{
			path: "secrets/settings",
			name: "secrets-settings",
			component: () => import("@/pages/secrets/VaultSettingsPage.vue"),
			meta: { title: "Vault settings", permission: "secrets:manage" }
		}
	],
	nav: [
		{ route: "secrets", label: "Secrets", icon: "key", section, permission: "secrets:read" },
		{
			route: "secrets-compare",
			label: "Compare environments",
			icon: "compare",
			section,
			permission: "secrets:read"
		},
		{ route: "secrets-access", label: "Access grants", icon: "users", section, permission: "secrets:manage" },
		{ route: "secrets-audit", label: "Audit log", icon: "activity", section, permission: "secrets:manage" },
		{ route: "secrets-settings", label: "Vault settings", icon: "settings", section, permission: "secrets:manage" }
	]
};
