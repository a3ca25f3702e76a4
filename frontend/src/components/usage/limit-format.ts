// Words and numbers of the limits page: what a limit counts, whom it applies to, and its use.
import type { LimitScope, LimitStatus } from "@/api/usage-limits.api";
import { formatCost } from "@/components/ai/format";

export const SCOPE_LABELS: Record<LimitScope, string> = {
	organization: "Organization",
	team: "Team",
	user: "Member",
	api_key: "API key"
};
export const METRIC_LABELS: Record<LimitStatus["metric"], string> = {
	tokens: "tokens",
	requests: "requests",
	tool_calls: "tool calls",
	cost: "USD"
};

export function formatAmount(metric: LimitStatus["metric"], value: number): string {
	return metric === "cost" ? formatCost(value) : `${Math.round(value).toLocaleString()} ${METRIC_LABELS[metric]}`;
}

// "2 of 5 requests", "$1.20 of $10.00".
export function formatUse(metric: LimitStatus["metric"], used: number, limit: number): string {
	if (metric === "cost") return `${formatCost(used)} of ${formatCost(limit)}`;
	return `${Math.round(used).toLocaleString()} of ${formatAmount(metric, limit)}`;
}
