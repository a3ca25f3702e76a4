// What the usage module's actions answer (their `response`): OpenAPI and the UI's generated types come from here.
import { listOf, named } from "../../lib/response";

const measures = {
	input_tokens: "number",
	output_tokens: "number",
	cached_tokens: "number",
	cache_write_tokens: "number",
	requests: "number",
	tool_calls: "number",
	embeddings: "number",
	cost: "number"
};
// A report row carries the measures asked for (`metrics`), so each is optional.
const someMeasures = Object.fromEntries(Object.entries(measures).map(([k, v]) => [k, `${v}|optional`]));

export const UsagePoint = named("UsagePoint", {
	bucket: "date",
	key: "string|nullable|optional", // the group's value (a model, a user id…); null: none (e.g. no API key)
	label: "string|nullable|optional", // its name, where it has one
	...someMeasures
});
export const UsageSeries = named("UsageSeries", {
	granularity: { type: "enum", values: ["hour", "day", "month"] },
	from: "date",
	to: "date",
	group_by: "string|nullable",
	metrics: listOf("string"),
	points: listOf(UsagePoint)
});
export const UsageTopRow = named("UsageTopRow", { key: "string|nullable", label: "string|nullable", ...measures });
export const UsageTop = named("UsageTop", {
	by: "string",
	metric: "string",
	from: "date",
	to: "date",
	rows: listOf(UsageTopRow)
});
const UsageTotals = named("UsageTotals", { kind: "string", ...measures });
export const UsageSummary = named("UsageSummary", {
	from: "date",
	to: "date",
	...measures,
	by_kind: listOf(UsageTotals)
});

export const UsageRepriced = named("UsageRepriced", {
	from: "date",
	to: "date",
	model: "string|nullable",
	events: "number|integer", // events in the period (of the model)
	changed: "number|integer", // whose cost changed
	cost_before: "number",
	cost_after: "number",
	buckets: named("UsageRebuiltBuckets", { hour: "number|integer", day: "number|integer", month: "number|integer" })
});
