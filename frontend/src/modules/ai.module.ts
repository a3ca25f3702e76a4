// ai: the organization's LLM gateway: a playground that streams answers over the socket, the completion log with
// tokens and cost, and (read for everyone, changed by admins) providers with their deployments, routing rules and
// fallback chains, presets, rate limits and settings. Provider keys are names of secrets in the vault, never values.
import type { AppModule } from "./types";

const section = "AI";

export const aiModule: AppModule = {
	name: "ai",
	order: 30,
	routes: [
		{ path: "ai", redirect: { name: "ai-playground" } },
		{
			path: "ai/playground",
			name: "ai-playground",
			component: () => import("@/pages/ai/PlaygroundPage.vue"),
			meta: { title: "Playground", permission: "ai:write" }
		},
		{
			path: "ai/agents",
			name: "ai-agents",
			component: () => import("@/pages/ai/AgentsPage.vue"),
			meta: { title: "Agents", permission: "ai:read" }
		},
		{
			path: "ai/connect",
			name: "ai-connect",
			component: () => import("@/pages/ai/ConnectPage.vue"),
			meta: { title: "Connect your IDE", permission: "ai:read" }
		},
		{
			path: "ai/logs",
			name: "ai-logs",
			component: () => import("@/pages/ai/LogsPage.vue"),
			meta: { title: "Completion log", permission: "ai:read" }
		},
		{
			path: "ai/providers",
			name: "ai-providers",
			component: () => import("@/pages/ai/ProvidersPage.vue"),
			meta: { title: "Providers & models", permission: "ai:read" }
		},
		{
			path: "ai/routing",
			name: "ai-routing",
			component: () => import("@/pages/ai/RoutingPage.vue"),
			meta: { title: "Routing & fallbacks", permission: "ai:read" }
		},
		{
			path: "ai/presets",
			name: "ai-presets",
			component: () => import("@/pages/ai/PresetsPage.vue"),
			meta: { title: "Presets", permission: "ai:read" }
		},
		{
			path: "ai/rate-limits",
			name: "ai-rate-limits",
			component: () => import("@/pages/ai/RateLimitsPage.vue"),
			meta: { title: "Rate limits", permission: "ai:read" }
		},
		{
			path: "ai/settings",
			name: "ai-settings",
			component: () => import("@/pages/ai/SettingsPage.vue"),
			meta: { title: "AI settings", permission: "ai:read" }
		}
	],
	nav: [
		{ route: "ai-playground", label: "Playground", icon: "code", section, permission: "ai:write" },
		{ route: "ai-agents", label: "Agents", icon: "flask", section, permission: "ai:read" },
		{ route: "ai-connect", label: "Connect your IDE", icon: "plug", section, permission: "ai:read" },
		{ route: "ai-logs", label: "Completion log", icon: "activity", section, permission: "ai:read" },
		{ route: "ai-providers", label: "Providers & models", icon: "building", section, permission: "ai:read" },
		{ route: "ai-routing", label: "Routing & fallbacks", icon: "arrow", section, permission: "ai:read" },
		{ route: "ai-presets", label: "Presets", icon: "copy", section, permission: "ai:read" },
		{ route: "ai-rate-limits", label: "Rate limits", icon: "chevrons", section, permission: "ai:read" },
		{ route: "ai-settings", label: "AI settings", icon: "settings", section, permission: "ai:read" }
	]
};
