// prompts: the templates the current organization sees; switching organization empties them (lib/use-crud.ts).
import { ref } from "vue";
import { defineStore } from "pinia";
import { useCrud, useLive, useOrgScope } from "@/lib/use-crud";
import {
	experimentsApi,
	promptsApi,
	type PromptExperiment,
	type PromptExperimentDetail,
	type PromptExperimentInput
} from "@/api/prompts.api";

export const usePromptsStore = defineStore("prompts", () => {
	const items = useCrud(promptsApi);
	return {
		items: items.items,
		loading: items.loading,
		error: items.error,
		load: items.load,
		create: items.create,
		remove: items.remove
	};
});

// --- Experiments: the organization's prompt experiments and the one open in the dashboard. A start, stop or
// completion anywhere (live notice) reloads both; a running experiment's figures are read again by the page.
export const useExperimentsStore = defineStore("prompts-experiments", () => {
	const list = ref<PromptExperiment[] | null>(null);
	const detail = ref<PromptExperimentDetail | null>(null);
	const scope = useOrgScope(() => {
		list.value = null;
		detail.value = null;
	});

	const load = () =>
		scope.load(
			() => experimentsApi.list(),
			v => (list.value = v)
		);
	const open = (id: string) =>
		scope.load(
			() => experimentsApi.get(id),
			v => (detail.value = v)
		);
	const close = () => (detail.value = null);

	async function start(body: PromptExperimentInput) {
		const d = await experimentsApi.start(body);
		detail.value = d;
		await load();
		return d;
	}

	async function stop(id: string, promoteVariantId?: string) {
		const d = await experimentsApi.stop(id, promoteVariantId);
		if (detail.value?.experiment.id === id) detail.value = d;
		await load();
		return d;
	}

	useLive(experimentsApi.entity, async () => {
		if (list.value) await load();
		if (detail.value) await open(detail.value.experiment.id);
	});

	return { list, detail, load, open, close, start, stop };
});
