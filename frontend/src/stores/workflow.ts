// workflow: the organization's workflow definitions, the one opened in the editor with its run history, and the
// run opened in the run view. Runs are execution runs: every step they take arrives as a live notice (entity
// "execution-runs") and the history and the opened run are read again, so nodes change colour as the engine
// commits each step. Switching organization empties everything (lib/use-crud.ts).
import { ref } from "vue";
import { defineStore } from "pinia";
import { useLive, useOrgScope } from "@/lib/use-crud";
import { runsApi, type ExecutionRunDetail } from "@/api/execution.api";
import {
	workflowApi,
	type WorkflowListItem,
	type WorkflowDefinitionDetail,
	type WorkflowGraph,
	type WorkflowInputBody,
	type WorkflowRun
} from "@/api/workflow.api";

export const useWorkflowStore = defineStore("workflow", () => {
	// Each with its newest run.
	const definitions = ref<WorkflowListItem[] | null>(null);
	const opened = ref<WorkflowDefinitionDetail | null>(null);
	const runs = ref<WorkflowRun[] | null>(null);
	const run = ref<ExecutionRunDetail | null>(null);
	// The graph of the version the opened run ran.
	const runGraph = ref<WorkflowGraph | null>(null);
	const scope = useOrgScope(() => {
		definitions.value = null;
		opened.value = null;
		runs.value = null;
		run.value = null;
		runGraph.value = null;
	});

	async function load() {
		await scope.load(
			() => workflowApi.list(),
			v => (definitions.value = v)
		);
	}

	async function open(id: string | null) {
		if (!id) {
			opened.value = null;
			runs.value = null;
			return;
		}
		if (opened.value?.id !== id) {
			opened.value = null;
			runs.value = null;
		}
		await Promise.all([
			scope.load(
				() => workflowApi.get(id),
				v => (opened.value = v)
			),
			loadRuns(id)
		]);
	}
	const loadRuns = (id: string) =>
		scope.load(
			() => workflowApi.runs(id),
			v => (runs.value = v)
		);

	async function openRun(workflowId: string, runId: string | null) {
		if (!runId) return void (run.value = null);
		const detail = await scope.load(
			() => runsApi.get(runId),
			v => (run.value = v)
		);
		const version = detail.run.workflowVersion;
		if (version === null) {
			await open(workflowId);
			runGraph.value = opened.value?.graph ?? null;
		} else
			await scope.load(
				() => workflowApi.version(workflowId, version),
				v => (runGraph.value = v.graph)
			);
	}

	// A run's step committed: the history, the newest runs in the list and the opened run are read again (a failed
	// read keeps what is shown).
	useLive(runsApi.entity, async () => {
		await Promise.all([
			definitions.value ? load() : undefined,
			opened.value ? loadRuns(opened.value.id) : undefined,
			run.value
				? scope.load(
						() => runsApi.get(run.value!.run.id),
						v => (run.value = v)
					)
				: undefined
		]);
	});

	async function create(body: WorkflowInputBody) {
		const d = await workflowApi.create(body);
		await load();
		return d;
	}
	async function save(id: string, body: WorkflowInputBody) {
		const d = await workflowApi.update(id, body);
		await open(id);
		return d;
	}
	async function remove(id: string) {
		await workflowApi.remove(id);
		definitions.value = definitions.value?.filter(d => d.id !== id) ?? null;
	}
	async function start(id: string, inputs: Record<string, unknown>, version?: number) {
		const r = await workflowApi.run(id, { inputs, ...(version ? { version } : {}) });
		await loadRuns(id);
		return r;
	}
	// Approve, Cancel and Rollback are execution's; the live notices bring the steps' new states.
	async function approve(position: number) {
		run.value = await runsApi.approve(run.value!.run.id, position);
	}
	async function cancel() {
		await runsApi.cancel(run.value!.run.id);
	}
	async function rollback() {
		await runsApi.rollback(run.value!.run.id);
	}

	return {
		definitions,
		opened,
		runs,
		run,
		runGraph,
		load,
		open,
		loadRuns,
		openRun,
		create,
		save,
		remove,
		start,
		approve,
		cancel,
		rollback
	};
});
