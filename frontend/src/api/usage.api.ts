// usage module: /api/usage (reports over the metered AI usage) and /api/usage/pricing (the organization's price
// list, versioned by effective date), in the organization chosen in the switcher. Types come from the generated
// schema.d.ts (npm run api-types).
import { api, crud, download, type Page, type Schema } from "@/lib/api";

export type UsageSeries = Schema<"UsageSeries">;
export type UsagePoint = Schema<"UsagePoint">;
export type UsageTop = Schema<"UsageTop">;
export type UsageTopRow = Schema<"UsageTopRow">;
export type UsageSummary = Schema<"UsageSummary">;
export type UsagePricing = Schema<"UsagePricing">;
export type UsageRepriced = Schema<"UsageRepriced">;

export type Granularity = "hour" | "day" | "month";
export type UsageGroup = "model" | "user" | "api_key" | "team" | "provider" | "kind";
export type TopBy = "model" | "user" | "api_key" | "team";
export type Metric =
	| "input_tokens"
	| "output_tokens"
	| "cached_tokens"
	| "cache_write_tokens"
	| "requests"
	| "tool_calls"
	| "embeddings"
	| "cost";

export interface Range {
	from: string;
	to: string;
}
export interface SeriesQuery extends Range {
	granularity: Granularity;
	group_by?: UsageGroup;
	metrics?: string; // "cost,requests"
}

export type UsagePricingInput = {
	model: string;
	input_price: number;
	output_price: number;
	cached_input_price?: number;
	cache_write_price?: number | null;
	effective_from?: string;
};

export const usageApi = {
	series: (q: SeriesQuery) => api.get<UsageSeries>("/usage/series", { ...q }),
	top: (q: Range & { by: TopBy; metric?: Metric; limit?: number }) => api.get<UsageTop>("/usage/top", { ...q }),
	summary: (q: Range) => api.get<UsageSummary>("/usage/summary", { ...q }),
	exportCsv: (q: SeriesQuery) =>
		download("/usage/export", { ...q }, `usage-${q.granularity}-${q.from.slice(0, 10)}.csv`)
};

// A price is never edited: a new version (row) takes over from its effective date; remove drops a version.
const pricing = crud<UsagePricing, UsagePricingInput>("/usage/pricing");
export const usagePricingApi = {
	entity: pricing.entity,
	all: pricing.all,
	create: pricing.create,
	update: pricing.update,
	remove: pricing.remove,
	reprice: (body: Range & { model?: string }) => api.post<UsageRepriced>("/usage/pricing/reprice", body)
};

// Quotas (/api/usage/quotas), budgets (/api/usage/budgets), each limit with its current period's use
// (/api/usage/limits) and the alerts sent when one crossed a threshold (/api/usage/alerts).
export type Quota = Schema<"UsageQuota">;
export type Budget = Schema<"UsageBudget">;
export type LimitStatus = Schema<"UsageLimitStatus">;
export type UsageAlert = Schema<"UsageAlert">;
export type LimitScope = Quota["scope"];
export type QuotaMetric = Quota["metric"];

export const LIMIT_SCOPES: LimitScope[] = ["organization", "team", "user", "api_key"];
export const QUOTA_METRICS: QuotaMetric[] = ["tokens", "requests", "tool_calls"];

export interface LimitInput {
	name?: string;
	scope?: LimitScope;
	subject_id?: string | null;
	period?: "day" | "month";
	amount?: number;
	thresholds?: number[];
	enabled?: boolean;
	metric?: QuotaMetric; // quotas only
}

export const quotasApi = crud<Quota, LimitInput>("/usage/quotas");
export const budgetsApi = crud<Budget, LimitInput>("/usage/budgets");
export const limitsApi = { status: () => api.get<LimitStatus[]>("/usage/limits") };
export const alertsApi = {
	list: () => api.get<Page<UsageAlert>>("/usage/alerts", { page: 1, pageSize: 50, sort: "-created_at" })
};
