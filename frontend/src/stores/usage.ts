// usage: the current organization's metered AI usage — the chosen period and its reports (series by a dimension,
// summary, top models/users/keys) — and its price list. Switching organization empties everything
// (lib/use-crud.ts); an answer for the previous organization is dropped.
import { defineStore } from "pinia";
import { ref } from "vue";
import { useCrud, useOrgScope } from "@/lib/use-crud";
import {
	alertsApi,
	budgetsApi,
	limitsApi,
	quotasApi,
	usageApi,
	usagePricingApi,
	type LimitInput,
	type LimitStatus,
	type UsageAlert,
	type Granularity,
	type Metric,
	type Range,
	type UsageGroup,
	type UsageRepriced,
	type UsageSeries,
	type UsageSummary,
	type UsageTop,
	type TopBy
} from "@/api/usage.api";

const DAY = 86_400_000;
export const PERIODS = { "24 hours": 1, "7 days": 7, "30 days": 30, "90 days": 90, "12 months": 365 } as const;
export type Period = keyof typeof PERIODS;

// The granularity a period is charted by (each within the API's range limits).
export const granularityOf = (p: Period): Granularity =>
	PERIODS[p] <= 7 ? "hour" : PERIODS[p] <= 90 ? "day" : "month";

export const useUsageStore = defineStore("usage", () => {
	const series = ref<UsageSeries | null>(null);
	const summary = ref<UsageSummary | null>(null);
	const noTops = (): Record<TopBy, UsageTop | null> => ({ model: null, user: null, api_key: null, team: null });
	const top = ref(noTops());
	const scope = useOrgScope(() => {
		series.value = null;
		summary.value = null;
		top.value = noTops();
	});
	const pricing = useCrud(usagePricingApi);

	function rangeOf(p: Period): Range {
		const to = new Date();
		return { from: new Date(to.getTime() - PERIODS[p] * DAY).toISOString(), to: to.toISOString() };
	}

	async function loadSeries(p: Period, group: UsageGroup, metric: Metric) {
		await scope.load(
			() => usageApi.series({ ...rangeOf(p), granularity: granularityOf(p), group_by: group, metrics: metric }),
			s => (series.value = s)
		);
	}

	async function loadOverview(p: Period, metric: Metric) {
		const range = rangeOf(p);
		await Promise.all([
			scope.load(
				() => usageApi.summary(range),
				s => (summary.value = s)
			),
			...(["model", "user", "api_key", "team"] as const).map(by =>
				scope.load(
					() => usageApi.top({ ...range, by, metric, limit: 10 }),
					t => (top.value = { ...top.value, [by]: t })
				)
			)
		]);
	}

	function exportCsv(p: Period, group: UsageGroup) {
		return usageApi.exportCsv({ ...rangeOf(p), granularity: granularityOf(p), group_by: group });
	}

	function reprice(body: Range & { model?: string }): Promise<UsageRepriced> {
		return usagePricingApi.reprice(body);
	}

	return {
		series,
		summary,
		top,
		loadSeries,
		loadOverview,
		exportCsv,
		pricing: pricing.items,
		pricingLoading: pricing.loading,
		pricingError: pricing.error,
		loadPricing: pricing.load,
		createPrice: pricing.create,
		removePrice: pricing.remove,
		reprice
	};
});

// The current organization's quotas and budgets with their consumption, and the alerts.
export const useUsageLimitsStore = defineStore("usage-limits", () => {
	const limits = ref<LimitStatus[] | null>(null);
	const alerts = ref<UsageAlert[] | null>(null);

	async function load() {
		limits.value = await limitsApi.status();
	}
	async function loadAlerts() {
		alerts.value = (await alertsApi.list()).rows;
	}
	const apiOf = (kind: LimitStatus["kind"]) => (kind === "quota" ? quotasApi : budgetsApi);
	async function save(kind: LimitStatus["kind"], id: string | null, body: LimitInput) {
		await (id ? apiOf(kind).update(id, body) : apiOf(kind).create(body));
		await load();
	}
	async function remove(kind: LimitStatus["kind"], id: string) {
		await apiOf(kind).remove(id);
		await load();
	}
	return { limits, alerts, load, loadAlerts, save, remove };
});
