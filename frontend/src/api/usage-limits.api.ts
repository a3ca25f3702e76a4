// usage limits: quotas (/api/usage/quotas), budgets (/api/usage/budgets), each limit with its current period's use
// (/api/usage/limits) and the alerts sent when one crossed a threshold (/api/usage/alerts).
import { api, crud, type Page, type Schema } from "@/lib/api";

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
