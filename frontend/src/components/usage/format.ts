// How the usage pages show numbers, money, dimensions and buckets.
import type { Granularity, LimitScope, LimitStatus, Metric, UsageGroup } from "@/api/usage.api";
import { formatCost } from "@/lib/format";

export { formatCost };

export const formatNumber = (v: number) =>
	Math.abs(v) >= 10_000
		? Intl.NumberFormat(undefined, { notation: "compact" }).format(v)
		: Math.round(v).toLocaleString();

export const formatMetric = (m: Metric, v: number) => (m === "cost" ? formatCost(v) : formatNumber(v));

export const METRIC_LABELS: Record<Metric, string> = {
	cost: "Cost",
	requests: "Requests",
	input_tokens: "Input tokens",
	output_tokens: "Output tokens",
	cached_tokens: "Cached tokens",
	cache_write_tokens: "Cache-write tokens",
	tool_calls: "Tool calls",
	embeddings: "Embeddings"
};

export const GROUP_LABELS: Record<UsageGroup, string> = {
	model: "Model",
	user: "User",
	api_key: "API key",
	team: "Team",
	provider: "Provider",
	kind: "Kind"
};

// A row's name: its label, else its id, else what having none means for the dimension.
export function nameOf(group: UsageGroup, key: string | null | undefined, label: string | null | undefined) {
	if (label) return label;
	if (key) return key;
	return { model: "—", user: "No user (service)", api_key: "No API key", team: "No team", provider: "—", kind: "—" }[
		group
	];
}

export function bucketLabel(g: Granularity, iso: string) {
	const d = new Date(iso);
	if (g === "hour") return d.toLocaleString(undefined, { day: "numeric", month: "short", hour: "2-digit" });
	if (g === "day") return d.toLocaleDateString(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
	return d.toLocaleDateString(undefined, { month: "short", year: "numeric", timeZone: "UTC" });
}

// The limits page: what a limit counts, whom it applies to, and its use.
export const SCOPE_LABELS: Record<LimitScope, string> = {
	organization: "Organization",
	team: "Team",
	user: "Member",
	api_key: "API key"
};
export const LIMIT_METRIC_LABELS: Record<LimitStatus["metric"], string> = {
	tokens: "tokens",
	requests: "requests",
	tool_calls: "tool calls",
	cost: "USD"
};

export function formatAmount(metric: LimitStatus["metric"], value: number): string {
	return metric === "cost"
		? formatCost(value)
		: `${Math.round(value).toLocaleString()} ${LIMIT_METRIC_LABELS[metric]}`;
}

// "2 of 5 requests", "$1.20 of $10.00".
export function formatUse(metric: LimitStatus["metric"], used: number, limit: number): string {
	if (metric === "cost") return `${formatCost(used)} of ${formatCost(limit)}`;
	return `${Math.round(used).toLocaleString()} of ${formatAmount(metric, limit)}`;
}
