// What the mcp module's actions answer (their `response`): OpenAPI and the UI's generated types come from here.
import { listOf, named } from "../../lib/response";

export const McpCall = named("McpCall", {
	execution_id: "uuid",
	is_error: "boolean",
	// The tool's content blocks as the server sent them (text, image, resource, …).
	content: listOf("any"),
	structured_content: "any|optional",
	duration_ms: "number|integer"
});

export const McpDiscovery = named("McpDiscovery", {
	tools: "number|integer",
	resources: "number|integer",
	resource_templates: "number|integer",
	prompts: "number|integer",
	drift: listOf(
		named("McpToolDrift", { tool: "string", change: { type: "enum", values: ["input", "output", "removed"] } })
	)
});

export const McpCheck = named("McpCheck", {
	ok: "boolean",
	latencyMs: "number|integer",
	health: { type: "enum", values: ["unknown", "healthy", "unhealthy"] },
	error: "string|optional"
});

export const McpAuthorize = named("McpAuthorize", {
	// true: stored tokens were enough (refreshed); otherwise the user goes to authorization_url
	authorized: "boolean",
	authorization_url: "string|optional"
});

export const McpAvailableTool = named("McpAvailableTool", {
	server_id: "uuid",
	server_name: "string",
	name: "string",
	title: "string|optional",
	description: "string|optional",
	input_schema: "object",
	output_schema: "object|optional",
	// The server's hints (MCP tool annotations: readOnlyHint, idempotentHint, …), when it gives them.
	annotations: "object|optional",
	requires_approval: "boolean"
});

export const McpHealthCheck = named("McpHealthCheck", {
	id: "number|integer",
	ok: "boolean",
	latency_ms: "number|integer|nullable",
	error: "string|nullable",
	health: { type: "enum", values: ["unknown", "healthy", "unhealthy"] },
	checked_at: "date"
});

export const McpCapabilities = named("McpServerCapabilities", {
	server_id: "uuid",
	capabilities: "object",
	instructions: "string|nullable",
	resources: listOf("object"),
	resource_templates: listOf("object"),
	prompts: listOf("object"),
	discovered_at: "date"
});

export const McpAllowList = named("McpAllowList", {
	id: "uuid",
	server_id: "uuid",
	team_id: "uuid|nullable",
	tools: listOf("string"),
	updated_at: "date"
});
