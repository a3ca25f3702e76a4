// embeddings module: /api/embeddings — models, collections, their documents and chunks, ingest and re-embed jobs,
// and search. Types come from the generated schema.d.ts (npm run api-types).
import { api, type Answer, type Page, type Schema } from "@/lib/api";

export type EmbeddingModel = Schema<"EmbModel">;
export interface ModelInput {
	name?: string;
	// Absent: the lexical embedder at these dimensions.
	deployment?: string;
	dimensions?: number;
}

export type Collection = Schema<"EmbCollection">;
export interface CollectionInput {
	name?: string;
	description?: string;
	modelId?: string;
}

export type EmbeddingDocument = Schema<"EmbDocument">;
export type DocumentDetail = Answer<"embeddings-documents.get">;
export type EmbeddingChunk = DocumentDetail["chunks"][number];
export type DocumentKind = "prose" | "markdown" | "code";
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

export type EmbeddingJob = Schema<"EmbJob">;

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
export type SearchResult = Schema<"EmbSearchHit">;
export type SearchAnswer = Answer<"embeddings.search">;

// The first 100 rows of a list (the pages show no more).
const list = async <T>(path: string, query: Record<string, string | number> = {}) =>
	(await api.get<Page<T>>(path, { page: 1, pageSize: 100, ...query })).rows;
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
	// One page of a collection's documents, by source id; `search` matches source ids and titles.
	page: (collectionId: string, query: { search?: string; page?: number } = {}) =>
		api.get<Page<EmbeddingDocument>>("/embeddings/documents", { collectionId, pageSize: 50, ...query }),
	get: (id: string) => api.get<DocumentDetail>(one("documents", id)),
	remove: (id: string) => api.delete<EmbeddingDocument>(one("documents", id))
};

export const jobsApi = {
	entity: "embeddings-jobs",
	list: (collectionId: string) => list<EmbeddingJob>("/embeddings/jobs", { collectionId }),
	get: (id: string) => api.get<EmbeddingJob>(one("jobs", id)),
	cancel: (id: string) => api.post<EmbeddingJob>(`${one("jobs", id)}/cancel`)
};
