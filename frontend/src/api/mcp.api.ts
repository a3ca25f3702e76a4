// mcp module: /api/mcp, in the organization chosen in the switcher. Types come from the generated schema.d.ts
// (npm run api-types).
import { api, crud, type Page, type Schema } from "@/lib/api";

export type McpServer = Schema<"McpServer">;
export type McpTool = Schema<"McpTool">;
export type McpExecution = Schema<"McpExecution">;
export type McpHealthCheck = Schema<"McpHealthCheck">;
export type McpCall = Schema<"McpCall">;
export type McpDiscovery = Schema<"McpDiscovery">;
// A value typed in the form, or one taken from a secret.
export type Valued = string | { secret: string };
export type McpServerInput = {
	name?: string;
	description?: string;
	transport?: "stdio" | "http" | "sse";
	command?: string | null;
	args?: string[];
	env?: Record<string, Valued>;
	url?: string | null;
	headers?: Record<string, Valued>;
	enabled?: boolean;
	timeout_ms?: number | null;
	tool_calls_per_minute?: number | null;
	oauth_client_id?: string | null;
	oauth_client_secret?: { secret: string } | null;
};

export const mcpServersApi = crud<McpServer, McpServerInput>("/mcp/servers");

export const mcpApi = {
	health: (id: string) => api.get<McpHealthCheck[]>(`/mcp/servers/${id}/health`, { limit: 60 }),
	refresh: (id: string) => api.post<McpDiscovery>(`/mcp/servers/${id}/refresh`),
	// The URL the browser opens to authorize the platform at the server (or authorized at once by a refresh).
	authorize: (id: string) => api.post<Schema<"McpAuthorize">>(`/mcp/servers/${id}/authorize`),
	check: (id: string) => api.post<Schema<"McpCheck">>(`/mcp/servers/${id}/check`),
	tools: (serverId: string) =>
		api.get<Page<McpTool>>("/mcp/tools", {
			query: JSON.stringify({ server_id: serverId }),
			pageSize: 100,
			sort: "name"
		}),
	updateTool: (
		id: string,
		body: { requires_approval?: boolean; changed?: false; calls_per_minute?: number | null }
	) => api.patch<McpTool>(`/mcp/tools/${id}`, body),
	// A person calling from the UI approves the call themselves.
	call: (server: string, tool: string, args: Record<string, unknown>) =>
		api.post<McpCall>("/mcp/call", { server, tool, arguments: args, approved: true }),
	executions: (page = 1, serverId?: string) =>
		api.get<Page<McpExecution>>("/mcp/executions", {
			page,
			pageSize: 50,
			sort: "-started_at",
			...(serverId ? { query: JSON.stringify({ server_id: serverId }) } : {})
		})
};
