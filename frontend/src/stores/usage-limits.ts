// usage limits: the current organization's quotas and budgets with their consumption, and the alerts.
import { defineStore } from "pinia";
import { ref } from "vue";
import {
	alertsApi,
	budgetsApi,
	limitsApi,
	quotasApi,
	type LimitInput,
	type LimitStatus,
	type UsageAlert
} from "@/api/usage-limits.api";

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
