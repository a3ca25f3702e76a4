// What the prompts module's actions answer (their `response`): OpenAPI and the UI's generated types come from here.
import { listOf, named } from "../../lib/response";

const Message = named("PromptMessage", {
	role: { type: "enum", values: ["system", "user", "assistant"] },
	content: "string"
});
const Variable = named("PromptVariable", {
	name: "string",
	type: { type: "enum", values: ["string", "number", "boolean", "enum", "list", "object"] },
	required: "boolean|optional",
	default: "any|optional",
	maxLength: "number|integer|optional",
	values: { type: "array", items: "string", optional: true },
	description: "string|optional"
});
const ModelSettings = "object";

export const PromptTemplate = named("PromptTemplate", {
	id: "uuid",
	organization_id: "uuid|nullable",
	name: "string",
	description: "string",
	tags: listOf("string"),
	overrides_template_id: "uuid|nullable",
	// A platform-wide template (read-only to organizations).
	shared: "boolean",
	// label -> version number
	labels: { type: "record", value: "number|integer" },
	latest_version: "number|integer",
	created_by: "uuid|nullable",
	created_at: "date",
	updated_at: "date"
});

export const PromptVersion = named("PromptVersion", {
	id: "uuid",
	template_id: "uuid",
	number: "number|integer",
	messages: listOf(Message),
	variables: listOf(Variable),
	model_settings: ModelSettings,
	note: "string",
	labels: listOf("string"),
	created_by: "uuid|nullable",
	created_at: "date"
});
export const PromptVersions = listOf(PromptVersion);

export const PromptLabel = named("PromptLabel", {
	name: "string",
	version: "number|integer",
	version_id: "uuid",
	protected: "boolean",
	updated_by: "uuid|nullable",
	updated_at: "date"
});

// A template with its labels and its latest version (get, create, override).
export const PromptTemplateDetail = named("PromptTemplateDetail", {
	template: PromptTemplate,
	labels: listOf(PromptLabel),
	latest: PromptVersion
});

export const LabelMove = named("PromptLabelMove", {
	id: "uuid",
	label: "string",
	from_version: "number|integer|nullable",
	to_version: "number|integer|nullable",
	moved_by: "uuid|nullable",
	created_at: "date"
});
export const LabelMoveResult = named("PromptLabelMoveResult", {
	label: PromptLabel,
	from_version: "number|integer|nullable"
});
export const LabelMoves = listOf(LabelMove);

const Change = { type: "enum", values: ["added", "removed", "changed", "unchanged"] };
export const PromptDiff = named("PromptDiff", {
	from: "number|integer",
	to: "number|integer",
	changed: "boolean",
	messages: listOf({
		type: "object",
		props: {
			index: "number|integer",
			change: Change,
			from_role: "string|nullable",
			to_role: "string|nullable",
			content: listOf({
				type: "object",
				props: { op: { type: "enum", values: ["equal", "added", "removed"] }, text: "string" }
			})
		}
	}),
	variables: listOf({
		type: "object",
		props: { name: "string", change: Change, from: "any", to: "any" }
	}),
	model_settings: listOf({ type: "object", props: { key: "string", change: Change, from: "any", to: "any" } })
});

const RenderedBy = {
	template: named("PromptRenderedTemplate", {
		id: "uuid",
		name: "string",
		shared: "boolean",
		overrides_template_id: "uuid|nullable"
	}),
	version: named("PromptRenderedVersion", { id: "uuid", number: "number|integer" }),
	label: "string|nullable",
	execution_id: "uuid",
	// The experiment running on the label and the variant this caller was assigned (null outside experiments).
	variant_id: "uuid|nullable",
	experiment_id: "uuid|nullable"
};
export const Rendered = named("PromptRendered", {
	messages: listOf(Message),
	model_settings: ModelSettings,
	...RenderedBy
});
// A draft rendered with sample values (prompts.preview): what a render of it would give, recorded nowhere.
export const Preview = named("PromptPreview", {
	messages: listOf(Message),
	model_settings: ModelSettings
});
export const Completed = named("PromptCompleted", {
	// OpenAI's chat.completion, as ai.complete answers it (with `coder`: which model served it).
	completion: "object",
	messages: listOf(Message),
	...RenderedBy
});

export const PromptExperiment = named("PromptExperiment", {
	id: "uuid",
	template_id: "uuid",
	name: "string",
	label: "string",
	metric: { type: "enum", values: ["success", "feedback", "latency", "cost"] },
	min_samples: "number|integer",
	confidence: "number",
	sticky_by: { type: "enum", values: ["user", "session"] },
	status: { type: "enum", values: ["running", "completed", "stopped"] },
	winner_variant_id: "uuid|nullable",
	started_by: "uuid|nullable",
	started_at: "date",
	ended_at: "date|nullable"
});

export const PromptExperimentDetail = named("PromptExperimentDetail", {
	experiment: PromptExperiment,
	variants: listOf(
		named("PromptVariant", {
			id: "uuid",
			version: "number|integer",
			weight: "number",
			// Observations of the experiment's metric.
			samples: "number|integer",
			successes: "number|integer",
			conversion: "number|nullable",
			mean_feedback: "number|nullable",
			mean_latency_ms: "number|nullable",
			mean_cost: "number|nullable",
			mean_tokens: "number|nullable"
		})
	),
	verdict: named("PromptExperimentVerdict", {
		status: { type: "enum", values: ["collecting", "winner", "no_difference", "stopped"] },
		winner_variant_id: "uuid|nullable",
		p_value: "number|nullable",
		reason: "string"
	}),
	// Each variant's executions by hour.
	series: listOf(
		named("PromptExperimentPoint", {
			variant_id: "uuid",
			bucket: "string",
			samples: "number|integer",
			conversion: "number|nullable",
			mean_latency_ms: "number|nullable",
			mean_cost: "number|nullable"
		})
	)
});
