// What the ai module's actions answer (their `response`), besides the configuration tables (DbMixin derives those):
// OpenAPI and the UI's generated types come from here.
import { listOf, named, type ResponseRule } from "../../lib/response";

export const AvailableModel = named("AvailableModel", {
	id: "string",
	object: { type: "equal", value: "model" },
	created: "number|integer",
	owned_by: "string",
	kind: { type: "enum", values: ["chat", "embedding", "preset"] }
});
export const AvailableModels = listOf(AvailableModel);

export const LOG_STATUSES = ["success", "error", "cancelled", "rate_limited"];

export const CompletionLog = named("CompletionLog", {
	id: "uuid",
	request_id: "string",
	user_id: "uuid|nullable",
	api_key_id: "uuid|nullable",
	api_key_name: "string|nullable",
	service: "string|nullable",
	kind: { type: "enum", values: ["chat", "embedding"] },
	requested_model: "string",
	served_model: "string|nullable",
	provider_id: "uuid|nullable",
	provider_name: "string|nullable",
	fallback_path: listOf("string"),
	stream: "boolean",
	cache_hit: "boolean",
	prompt_tokens: "number|integer",
	completion_tokens: "number|integer",
	cached_tokens: "number|integer",
	cost: "number",
	latency_ms: "number|integer|nullable",
	first_token_ms: "number|integer|nullable",
	status: { type: "enum", values: LOG_STATUSES },
	error: "string|nullable",
	// The managed prompt it was rendered from (prompts module), or null.
	prompt: {
		type: "object",
		nullable: true,
		props: { templateId: "uuid", versionId: "uuid", variantId: "uuid|nullable" }
	},
	created_at: "date"
});

export const CompletionLogs = {
	type: "object",
	props: {
		rows: listOf(CompletionLog),
		totals: named("LogTotals", {
			requests: "number|integer",
			prompt_tokens: "number|integer",
			completion_tokens: "number|integer",
			cost: "number"
		})
	}
};

// One entry: the list's row, who made it, and the request and answer when the organization keeps them.
export const CompletionLogDetail = named("CompletionLogDetail", {
	...(CompletionLog.props as Record<string, ResponseRule>),
	user_name: "string|nullable",
	user_email: "string|nullable",
	content_stored: "boolean",
	// Kept, but not shown to this reader: only its author and those with ai:manage see a request's words.
	content_hidden: "boolean",
	request_body: { type: "any", nullable: true },
	response_body: { type: "any", nullable: true }
});

export const LogStats = named("LogStats", {
	bucket: { type: "enum", values: ["hour", "day"] },
	from: "string",
	to: "string",
	rows: listOf(
		named("LogStatsRow", {
			bucket: "string",
			model: "string",
			requests: "number|integer",
			errors: "number|integer",
			prompt_tokens: "number|integer",
			completion_tokens: "number|integer",
			cost: "number",
			avg_latency_ms: "number|integer|nullable",
			p95_latency_ms: "number|integer|nullable"
		})
	)
});

// Agent runs (services/ai/agent-runs.service.ts): a run, and each of its steps (a model turn or one tool call).
export const AGENT_RUN_STATUSES = [
	"running",
	"awaiting_approval",
	"completed",
	"failed",
	"cancelled",
	"step_limit",
	"budget_exceeded"
];
export const AgentRun = named("AgentRun", {
	id: "uuid",
	organization_id: "uuid",
	user_id: "uuid|nullable",
	api_key_id: "uuid|nullable",
	model: "string",
	tool_sets: listOf("string"),
	status: { type: "enum", values: AGENT_RUN_STATUSES },
	max_steps: "number|integer",
	max_tokens: "number|integer|nullable",
	max_cost: "number|nullable",
	turns: "number|integer",
	tokens: "number|integer",
	// The tokens' parts, summed over the model turns: prompt (cached ones among them) and completion.
	prompt_tokens: "number|integer",
	completion_tokens: "number|integer",
	cached_tokens: "number|integer",
	cost: "number",
	output: "string|nullable",
	error: "string|nullable",
	created_at: "date",
	updated_at: "date",
	finished_at: "date|nullable"
});
export const AgentStep = named("AgentStep", {
	id: "uuid",
	run_id: "uuid",
	seq: "number|integer",
	kind: { type: "enum", values: ["model", "tool"] },
	status: {
		type: "enum",
		values: [
			"completed",
			"failed",
			"awaiting_approval",
			"approved",
			"rejected",
			"running",
			"cancelled",
			"interrupted"
		]
	},
	content: "string|nullable",
	tool_calls: { type: "any", nullable: true },
	call_id: "string|nullable",
	tool: "string|nullable",
	// The MCP server's name, or "platform" for the platform's own tools.
	server: "string|nullable",
	arguments: { type: "any", nullable: true },
	result: { type: "any", nullable: true },
	is_error: "boolean",
	decided_by: "uuid|nullable",
	tokens: "number|integer",
	cost: "number",
	duration_ms: "number|integer|nullable",
	// A tool call's record before it is made: the key it is made under, when, and how often (README "Durability").
	idempotency_key: "string|nullable",
	call_started_at: "date|nullable",
	attempts: "number|integer",
	created_at: "date",
	updated_at: "date"
});
export const AgentRunDetail = named("AgentRunDetail", {
	...(AgentRun.props as Record<string, ResponseRule>),
	// The task: the run's last user message before its first turn (null when it was given other messages only).
	prompt: "string|nullable",
	steps: listOf(AgentStep)
});
