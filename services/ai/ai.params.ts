// What the AI actions accept: OpenAI's chat, Responses and embeddings parameters, and which of them go upstream.

export const message = {
	type: "object",
	props: {
		role: { type: "enum", values: ["system", "developer", "user", "assistant", "tool"] },
		// null or absent on an assistant turn that only calls tools, as OpenAI's SDK sends it back.
		content: { type: "multi", rules: [{ type: "string" }, { type: "array" }], nullable: true, optional: true },
		name: { type: "string", optional: true },
		tool_calls: { type: "array", optional: true },
		tool_call_id: { type: "string", optional: true }
	}
};
export const chatParams = {
	model: { type: "string", min: 1, max: 200 },
	messages: { type: "array", items: message, min: 1, max: 1000 },
	temperature: { type: "number", min: 0, max: 2, optional: true },
	top_p: { type: "number", min: 0, max: 1, optional: true },
	max_tokens: { type: "number", integer: true, positive: true, optional: true },
	max_completion_tokens: { type: "number", integer: true, positive: true, optional: true },
	stop: [
		{ type: "string", optional: true },
		{ type: "array", items: "string", optional: true }
	],
	tools: { type: "array", optional: true },
	tool_choice: { type: "any", optional: true },
	response_format: { type: "object", optional: true },
	seed: { type: "number", integer: true, optional: true },
	user: { type: "string", max: 200, optional: true },
	presence_penalty: { type: "number", optional: true },
	frequency_penalty: { type: "number", optional: true },
	n: { type: "number", integer: true, min: 1, max: 16, optional: true },
	logprobs: { type: "boolean", optional: true },
	top_logprobs: { type: "number", integer: true, min: 0, max: 20, optional: true },
	logit_bias: { type: "object", optional: true },
	parallel_tool_calls: { type: "boolean", optional: true },
	reasoning_effort: { type: "string", max: 20, optional: true },
	// Platform options: routing tags, cache opt-in (true) or bypass (false), a client-chosen id for cancellation.
	tags: { type: "array", items: "string", max: 10, optional: true },
	cache: { type: "boolean", optional: true },
	requestId: { type: "string", max: 100, optional: true }
};
export const PASS_THROUGH = [
	"messages",
	"temperature",
	"top_p",
	"max_tokens",
	"max_completion_tokens",
	"stop",
	"tools",
	"tool_choice",
	"response_format",
	"seed",
	"user",
	"presence_penalty",
	"frequency_penalty",
	"n",
	"logprobs",
	"top_logprobs",
	"logit_bias",
	"parallel_tool_calls",
	"reasoning_effort"
];

// The Responses API's request fields relayed upstream (services/ai/responses-api.ts).
export const RESPONSES_FIELDS = [
	"input",
	"instructions",
	"tools",
	"tool_choice",
	"text",
	"temperature",
	"top_p",
	"max_output_tokens",
	"reasoning",
	"metadata",
	"parallel_tool_calls",
	"previous_response_id",
	"store",
	"truncation",
	"include",
	"top_logprobs",
	"user"
];
export type Api = "chat" | "responses" | "embeddings";
export const FIELDS: Record<Api, string[]> = {
	chat: PASS_THROUGH,
	responses: RESPONSES_FIELDS,
	embeddings: ["input", "dimensions", "encoding_format", "user"]
};
