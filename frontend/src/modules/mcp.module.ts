// mcp: MCP servers the organization registers, their tools (tried from a form made from each tool's input schema),
// their health, and the log of tool calls.
import type { AppModule } from "./types";

export const mcpModule: AppModule = {
	name: "mcp",
	// After prompts, in the AI section: tools are what agents call.
	order: 37,
	routes: [
		{
			// The registry and, with an id, one server: health timeline, tools, its calls. Not under /mcp: that path
			// is the platform's own MCP endpoint, so a page there could not be loaded by its URL (a reload, the OAuth
			// callback's return).
			path: "mcp-servers/:id?",
			name: "mcp",
			component: () => import("@/pages/mcp/McpPage.vue"),
			meta: { title: "MCP servers", permission: "mcp:read" }
		},
		{
			path: "mcp-executions",
			name: "mcp-executions",
			component: () => import("@/pages/mcp/ExecutionsPage.vue"),
			meta: { title: "Tool calls", permission: "mcp:read" }
		}
	],
	nav: [
		{ route: "mcp", label: "MCP servers", icon: "plug", section: "AI", permission: "mcp:read" },
		{ route: "mcp-executions", label: "Tool calls", icon: "activity", section: "AI", permission: "mcp:read" }
	]
};
