// embeddings: the organization's models and collections, and the collection open on the page with its documents
// and jobs. Job progress arrives as live notices (entity "embeddings-jobs", with { done, total } so the bar moves
// without a request); a notice without it, or a job reaching its total, reads the collection again. While the live
// connection is down and a job runs, the jobs are polled instead.
import { defineStore } from "pinia";
import { ref, watch } from "vue";
import { useCrud, useLive, useOrgScope } from "@/lib/use-crud";
import { useRealtimeStore, type ChangeNotice } from "@/stores/realtime";
import {
	collectionsApi,
	documentsApi,
	jobsApi,
	modelsApi,
	type Collection,
	type DocumentInput,
	type EmbeddingDocument,
	type EmbeddingJob,
	type SearchInput
} from "@/api/embeddings.api";

// A job notice may carry its counts (a count is not a secret); lib/live.ts passes extra fields through.
type JobNotice = ChangeNotice & { progress?: { done: number; total: number } };

const POLL_MS = 2000;
export const activeJob = (j: EmbeddingJob) => j.status === "queued" || j.status === "running";

export const useEmbeddingsStore = defineStore("embeddings", () => {
	const realtime = useRealtimeStore();
	const models = useCrud(modelsApi);
	const collections = useCrud(collectionsApi);

	const openId = ref<string | null>(null);
	const collection = ref<Collection | null>(null);
	const documents = ref<EmbeddingDocument[] | null>(null);
	// Which page of the documents is shown, and the source id / title search.
	const documentsQuery = ref({ search: "", page: 1 });
	const documentsTotal = ref(0);
	const documentsPages = ref(1);
	const jobs = ref<EmbeddingJob[] | null>(null);
	const scope = useOrgScope(() => {
		collection.value = null;
		documents.value = null;
		jobs.value = null;
	});

	// Each answer is kept only if the same collection is still open (and the organization unchanged).
	const forOpen = <T>(id: string, fetch: () => Promise<T>, apply: (v: T) => void) =>
		scope.load(fetch, v => openId.value === id && apply(v));

	const loadCollection = (id: string) =>
		forOpen(
			id,
			() => collectionsApi.get(id),
			c => (collection.value = c)
		);
	const loadDocuments = (id: string) =>
		forOpen(
			id,
			() => documentsApi.page(id, documentsQuery.value),
			p => {
				documents.value = p.rows;
				documentsTotal.value = p.total;
				documentsPages.value = Math.max(1, p.totalPages);
			}
		);
	async function showDocuments(query: { search?: string; page?: number }) {
		documentsQuery.value = { ...documentsQuery.value, page: 1, ...query };
		if (openId.value) await loadDocuments(openId.value);
	}
	const loadJobs = (id: string) =>
		forOpen(
			id,
			() => jobsApi.list(id),
			j => (jobs.value = [...j].sort((a, b) => b.createdAt.localeCompare(a.createdAt)))
		);
	const reloadOpen = async () => {
		const id = openId.value;
		if (id) await Promise.all([loadCollection(id), loadDocuments(id), loadJobs(id)]);
	};

	async function open(id: string) {
		if (openId.value !== id) {
			collection.value = null;
			documents.value = null;
			jobs.value = null;
			documentsQuery.value = { search: "", page: 1 };
		}
		openId.value = id;
		await reloadOpen();
	}

	function close() {
		openId.value = null;
	}

	useLive(jobsApi.entity, async (notices: JobNotice[]) => {
		if (!openId.value || !jobs.value) return;
		let reread = false;
		for (const n of notices) {
			const job = jobs.value.find(j => j.id === n.id);
			if (!job || !n.progress || n.progress.done >= n.progress.total) reread = true;
			else {
				job.done = n.progress.done;
				job.total = n.progress.total;
				if (job.status === "queued") job.status = "running";
			}
		}
		if (reread) await reloadOpen();
	});
	useLive(documentsApi.entity, async () => {
		if (openId.value) await Promise.all([loadDocuments(openId.value), loadCollection(openId.value)]);
	});
	useLive(collectionsApi.entity, async () => {
		if (openId.value) await loadCollection(openId.value);
	});

	// Without the live connection a running job would look stuck: poll until it ends or the connection is back.
	let poll: ReturnType<typeof setInterval> | undefined;
	watch(
		() => [realtime.status, openId.value, jobs.value?.some(activeJob)] as const,
		([status, id, running]) => {
			clearInterval(poll);
			poll = undefined;
			if (status !== "live" && id && running)
				poll = setInterval(() => void reloadOpen().catch(() => {}), POLL_MS);
		}
	);

	function trackJob(job: EmbeddingJob) {
		if (jobs.value && job.collectionId === openId.value)
			jobs.value = [job, ...jobs.value.filter(j => j.id !== job.id)];
	}

	async function ingest(collectionId: string, docs: DocumentInput[]) {
		const job = await collectionsApi.ingest(collectionId, docs);
		trackJob(job);
		return job;
	}

	async function cancelJob(id: string) {
		trackJob(await jobsApi.cancel(id));
	}

	async function reembed(collectionId: string, modelId: string) {
		const job = await collectionsApi.reembed(collectionId, modelId);
		trackJob(job);
		if (openId.value === collectionId) await loadCollection(collectionId);
		return job;
	}

	async function removeDocument(id: string) {
		await documentsApi.remove(id);
		if (openId.value) await Promise.all([loadDocuments(openId.value), loadCollection(openId.value)]);
	}

	return {
		models: models.items,
		modelsError: models.error,
		loadModels: models.load,
		createModel: models.create,
		removeModel: models.remove,
		collections: collections.items,
		collectionsError: collections.error,
		loadCollections: collections.load,
		createCollection: collections.create,
		updateCollection: collections.update,
		removeCollection: collections.remove,
		collection,
		documents,
		documentsQuery,
		documentsTotal,
		documentsPages,
		showDocuments,
		jobs,
		open,
		close,
		reload: reloadOpen,
		ingest,
		cancelJob,
		reembed,
		removeDocument,
		getDocument: documentsApi.get,
		search: (collectionId: string, body: SearchInput) => collectionsApi.search(collectionId, body)
	};
});
