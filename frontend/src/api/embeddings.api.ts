// embeddings module: /api/embeddings — models, collections, their documents and chunks, ingest and re-embed jobs,
// and search. Shapes as the module's REST API answers them (README, "Embeddings").
import { api, type Page } from "@/lib/api";

export interface EmbeddingModel {
	id: string;
	name: string;
	// "local": the built-in lexical embedder; "deployment": an AI deployment of kind embedding, by name.
	kind: "local" | "deployment";
	deployment: string | null;
	dimensions: number;
	builtIn: boolean;
	createdAt: string;
	updatedAt: string;
}
export interface ModelInput {
	name?: string;
	// Absent: the lexical embedder at these dimensions.
	deployment?: string;
	dimensions?: number;
}

export type CollectionStatus = "ready" | "reembedding";
export interface Collection {
	id: string;
	name: string;
	description?: string | null;
	modelId: string;
	modelName: string;
	dimensions: number;
	documentCount: number;
	chunkCount: number;
	status: CollectionStatus;
	reembedJobId?: string | null;
	createdAt: string;
	updatedAt: string;
}
export interface CollectionInput {
	name?: string;
	description?: string;
	modelId?: string;
}

export type DocumentKind = "prose" | "markdown" | "code";
export interface EmbeddingDocument {
	id: string;
	collectionId: string;
	sourceId: string;
	title?: string | null;
	kind?: DocumentKind | null;
	language?: string | null;
	path?: string | null;
	metadata?: Record<string, unknown> | null;
	chunkCount?: number;
	createdAt: string;
	updatedAt: string;
}
export interface EmbeddingChunk {
	id?: string;
	index: number;
	text: string;
	tokens: number;
	heading?: string | null;
	symbol?: string | null;
}
export type DocumentDetail = EmbeddingDocument & { chunks: EmbeddingChunk[] };
// One document to add: its text and what the chunker should know of it.
export interface DocumentInput {
	sourceId: string;
	text: string;
	title?: string;
	kind?: DocumentKind;
	language?: string;
	path?: string;
	metadata?: Record<string, string | number | boolean | null>;
}

export type JobStatus = "queued" | "running" | "completed" | "failed" | "cancelled";
export interface EmbeddingJob {
	id: string;
	collectionId: string;
	kind: "ingest" | "reembed";
	status: JobStatus;
	done: number;
	total: number;
	error?: string | null;
	createdAt: string;
	startedAt?: string | null;
	finishedAt?: string | null;
}

export type SearchMode = "vector" | "fulltext" | "hybrid";
export type MetadataFilter = Record<string, string | number | boolean | null | { in: (string | number | boolean)[] }>;
export interface SearchInput {
	query: string;
	k?: number;
	mode?: SearchMode;
	weights?: { vector: number; fulltext: number };
	filter?: MetadataFilter;
	rerank?: { deployment: string };
}
export interface SearchResult {
	chunkId: string;
	documentId: string;
	sourceId: string;
	title?: string | null;
	text: string;
	heading?: string | null;
	metadata?: Record<string, unknown> | null;
	score: number;
	scores: { vector?: number; fulltext?: number; rerank?: number };
	rank: number;
}
export interface SearchAnswer {
	results: SearchResult[];
	mode: SearchMode;
	tookMs: number;
}

// Lists come as a page (DbMixin) or a plain array; the UI reads up to 100 rows, the most recent first where sorted.
type Listed<T> = Page<T> | T[];
const rows = <T>(answer: Listed<T>): T[] => (Array.isArray(answer) ? answer : answer.rows);
const list = async <T>(path: string, query: Record<string, string | number> = {}) =>
	rows(await api.get<Listed<T>>(path, { page: 1, pageSize: 100, ...query }));
const one = (path: string, id: string) => `/embeddings/${path}/${encodeURIComponent(id)}`;

export const modelsApi = {
	entity: "embeddings-models",
	all: () => list<EmbeddingModel>("/embeddings/models"),
	create: (body: ModelInput) => api.post<EmbeddingModel>("/embeddings/models", body),
	update: (id: string, body: ModelInput) => api.patch<EmbeddingModel>(one("models", id), body),
	remove: (id: string) => api.delete<EmbeddingModel>(one("models", id))
};

export const collectionsApi = {
	entity: "embeddings-collections",
	all: () => list<Collection>("/embeddings/collections"),
	get: (id: string) => api.get<Collection>(one("collections", id)),
	create: (body: CollectionInput) => api.post<Collection>("/embeddings/collections", body),
	update: (id: string, body: CollectionInput) => api.patch<Collection>(one("collections", id), body),
	remove: (id: string) => api.delete<Collection>(one("collections", id)),
	reembed: (id: string, modelId: string) => api.post<EmbeddingJob>(`${one("collections", id)}/reembed`, { modelId }),
	ingest: (id: string, documents: DocumentInput[]) =>
		api.post<EmbeddingJob>(`${one("collections", id)}/ingest`, { documents }),
	search: (id: string, body: SearchInput) => api.post<SearchAnswer>(`${one("collections", id)}/search`, body)
};

export const documentsApi = {
	entity: "embeddings-documents",
	list: (collectionId: string) => list<EmbeddingDocument>("/embeddings/documents", { collectionId }),
	get: (id: string) => api.get<DocumentDetail>(one("documents", id)),
	remove: (id: string) => api.delete<EmbeddingDocument>(one("documents", id))
};

export const jobsApi = {
	entity: "embeddings-jobs",
	list: (collectionId: string) => list<EmbeddingJob>("/embeddings/jobs", { collectionId }),
	get: (id: string) => api.get<EmbeddingJob>(one("jobs", id)),
	cancel: (id: string) => api.post<EmbeddingJob>(`${one("jobs", id)}/cancel`)
};
