// How the usage pages show numbers, money, dimensions and buckets.
import type { Granularity, Metric, UsageGroup } from "@/api/usage.api";

export const formatNumber = (v: number) =>
	Math.abs(v) >= 10_000
		? Intl.NumberFormat(undefined, { notation: "compact" }).format(v)
		: Math.round(v).toLocaleString();

export function formatCost(v: number): string {
	if (v === 0) return "$0";
	if (Math.abs(v) < 0.01) return `$${v.toPrecision(2)}`;
	return `$${v.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

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
