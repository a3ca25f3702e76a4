// mcp-executions: the organization's log of tool calls (written by the mcp service, one row per call, arguments
// and results redacted of the server's secret values), read with DbMixin's scoped list. Never written by clients.
import type { ServiceSchema } from "../../lib/schema";
import { DbMixin } from "../../mixins/db.mixin";

const McpExecutionsService: ServiceSchema = {
	name: "mcp-executions",
	mixins: [
		DbMixin({
			table: "mcp_executions",
			columns: [
				"id",
				"organization_id",
				"server_id",
				"server_name",
				"tool",
				"user_id",
				"api_key_id",
				"arguments",
				"result",
				"is_error",
				"outcome",
				"error",
				"duration_ms",
				"started_at",
				"finished_at"
			],
			writable: {},
			tenant: true,
			searchFields: ["tool", "server_name"],
			permissions: { read: "mcp:read", write: "mcp:manage" },
			rest: "/mcp/executions",
			entityName: "MCP execution",
			schemaName: "McpExecution",
			entity: {
				server_id: "uuid|nullable",
				server_name: "string",
				tool: "string",
				user_id: "uuid|nullable",
				api_key_id: "uuid|nullable",
				arguments: "any",
				result: "any",
				is_error: "boolean",
				outcome: {
					type: "enum",
					values: ["completed", "error", "timeout", "cancelled", "failed", "too_large"]
				},
				error: "string|nullable",
				duration_ms: "number|integer",
				started_at: "date",
				finished_at: "date"
			}
		})
	],
	// Written on every tool call: not cached (a cache would be dropped on every call anyway).
	actions: {
		find: false,
		count: false,
		create: false,
		update: false,
		remove: false,
		list: { cache: false },
		get: { cache: false }
	}
};

export default McpExecutionsService;
