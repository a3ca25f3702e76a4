// mcp: the organization's items.
import type { AppModule } from "./types";

export const mcpModule: AppModule = {
	name: "mcp",
	order: 100,
	routes: [
		{
			path: "mcp",
			name: "mcp",
			component: () => import("@/pages/mcp/McpPage.vue"),
			meta: { title: "Mcp", permission: "mcp:read" }
		}
	],
	nav: [{ route: "mcp", label: "Mcp", icon: "code", permission: "mcp:read" }]
};
