// prompts: the templates the current organization sees; switching organization empties them (lib/use-crud.ts).
import { ref } from "vue";
import { defineStore } from "pinia";
import { useCrud, useLive, useOrgScope } from "@/lib/use-crud";
import {
	experimentsApi,
	promptsApi,
	promptTemplatesApi as T,
	type PromptExperiment,
	type PromptExperimentDetail,
	type PromptExperimentInput,
	type PromptLabelMove,
	type PromptTemplate,
	type PromptTemplateDetail,
	type PromptTemplateInput,
	type PromptVersion,
	type VersionInput
} from "@/api/prompts.api";

export const usePromptsStore = defineStore("prompts", () => {
	const items = useCrud(promptsApi);

	// Templates: the searched list, and the template open in the editor with its versions and label moves.
	const search = ref("");
	const templates = ref<PromptTemplate[] | null>(null);
	const current = ref<PromptTemplateDetail | null>(null);
	const versions = ref<PromptVersion[] | null>(null);
	const moves = ref<PromptLabelMove[] | null>(null);
	const scope = useOrgScope(() => {
		templates.value = null;
		current.value = null;
		versions.value = null;
		moves.value = null;
	});

	// Only the answer to the latest search is shown, however the responses to fast typing arrive.
	let listRequest = 0;
	async function loadTemplates() {
		const mine = ++listRequest;
		await scope.load(
			() => T.list({ search: search.value.trim() || undefined }),
			page => mine === listRequest && (templates.value = page.rows)
		);
	}

	async function loadTemplate(id: string) {
		await scope.load(
			() => Promise.all([T.get(id), T.versions(id), T.labelMoves(id)]),
			([detail, list, history]) => {
				current.value = detail;
				versions.value = list;
				moves.value = history;
			}
		);
	}

	// After a write to the open template: it, its versions and its label moves are read again, and so is the list.
	async function refresh(id: string) {
		if (current.value?.template.id === id) await loadTemplate(id);
		if (templates.value) await loadTemplates().catch(() => undefined);
	}

	async function createTemplate(body: PromptTemplateInput) {
		const detail = await T.create(body);
		if (templates.value) await loadTemplates().catch(() => undefined);
		return detail;
	}
	async function publish(id: string, body: VersionInput) {
		const v = await T.publish(id, body);
		await refresh(id);
		return v;
	}
	async function updateTemplate(id: string, body: { description?: string; tags?: string[] }) {
		const d = await T.update(id, body);
		await refresh(id);
		return d;
	}
	async function removeTemplate(id: string) {
		await T.remove(id);
		templates.value = templates.value?.filter(t => t.id !== id) ?? null;
	}
	async function moveLabel(id: string, label: string, version: number, protect?: boolean) {
		const r = await T.moveLabel(id, label, { version, ...(protect === undefined ? {} : { protected: protect }) });
		await refresh(id);
		return r;
	}
	async function removeLabel(id: string, label: string) {
		const r = await T.removeLabel(id, label);
		await refresh(id);
		return r;
	}
	async function rollback(id: string, label: string, version?: number) {
		const r = await T.rollback(id, { label, ...(version ? { version } : {}) });
		await refresh(id);
		return r;
	}
	// The organization's own copy of a shared template; the editor opens on it.
	async function override(id: string) {
		const d = await T.override(id);
		if (templates.value) await loadTemplates().catch(() => undefined);
		return d;
	}

	// Another member's change: the list shown, and the template open, are read again.
	useLive("prompts", async notices => {
		if (templates.value) await loadTemplates();
		const open = current.value?.template.id;
		if (open && notices.some(n => n.id === open)) await loadTemplate(open);
	});

	return {
		items: items.items,
		loading: items.loading,
		error: items.error,
		load: items.load,
		create: items.create,
		remove: items.remove,

		search,
		templates,
		current,
		versions,
		moves,
		loadTemplates,
		loadTemplate,
		createTemplate,
		updateTemplate,
		removeTemplate,
		publish,
		moveLabel,
		removeLabel,
		rollback,
		override
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
