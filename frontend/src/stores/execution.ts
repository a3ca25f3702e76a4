// execution: the organization's plan runs and the one opened in the timeline. Every step a run takes arrives as a
// live notice (entity "execution-runs"): the list and the opened run are read again, so the timeline moves as the
// engine commits each step. Switching organization empties them (lib/use-crud.ts).
import { ref } from "vue";
import { defineStore } from "pinia";
import { useLive, useOrgScope } from "@/lib/use-crud";
import { runsApi, type ExecutionRun, type ExecutionRunDetail } from "@/api/execution.api";
import { plansApi, type PlanningPlan } from "@/api/planning.api";

export const useExecutionStore = defineStore("execution", () => {
	const runs = ref<ExecutionRun[] | null>(null);
	const plans = ref<PlanningPlan[] | null>(null);
	const opened = ref<ExecutionRunDetail | null>(null);
	const scope = useOrgScope(() => {
		runs.value = null;
		plans.value = null;
		opened.value = null;
	});

	async function load() {
		await Promise.all([
			scope.load(
				() => runsApi.list(),
				v => (runs.value = v)
			),
			scope.load(
				() => plansApi.all(),
				v => (plans.value = v)
			)
		]);
	}
	async function open(id: string | null) {
		if (!id) return void (opened.value = null);
		await scope.load(
			() => runsApi.get(id),
			v => (opened.value = v)
		);
	}
	async function refresh() {
		await Promise.all([
			scope.load(
				() => runsApi.list(),
				v => (runs.value = v)
			),
			opened.value ? open(opened.value.run.id) : undefined
		]);
	}
	useLive(runsApi.entity, refresh);

	async function start(planId: string) {
		const run = await runsApi.start(planId);
		await refresh();
		await open(run.id);
	}
	async function approve(position: number) {
		opened.value = await runsApi.approve(opened.value!.run.id, position);
	}
	async function rollback() {
		await runsApi.rollback(opened.value!.run.id);
		await refresh();
	}
	async function cancel() {
		await runsApi.cancel(opened.value!.run.id);
		await refresh();
	}
	return { runs, plans, opened, load, open, refresh, start, approve, rollback, cancel };
});
