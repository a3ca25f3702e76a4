// What the embeddings module's actions take and answer (lib/response.ts): OpenAPI and the UI's types come from here.
import { listOf, named } from "../../lib/response";
import type { JobRow, JobsLive } from "../../mixins/jobs.mixin";

// One document of an upsert or an ingest.
export const documentRule = {
	type: "object",
	strict: "remove",
	props: {
		sourceId: { type: "string", min: 1, max: 500, label: "Source id" },
		text: { type: "string", min: 1, max: 1_000_000, label: "Text" },
		title: { type: "string", max: 500, optional: true, label: "Title" },
		kind: { type: "enum", values: ["prose", "markdown", "code"], optional: true, label: "Kind" },
		language: { type: "string", max: 50, optional: true, label: "Language" },
		path: { type: "string", max: 1000, optional: true, label: "Path" },
		metadata: {
			type: "record",
			optional: true,
			key: { type: "string", min: 1, max: 100 },
			value: {
				type: "multi",
				rules: [
					{ type: "string", max: 10_000 },
					"number",
					"boolean",
					{ type: "equal", value: null, strict: true }
				]
			},
			label: "Metadata"
		}
	}
};

export const jobRow = named("EmbJob", {
	id: "uuid",
	collectionId: { type: "uuid", nullable: true },
	kind: { type: "enum", values: ["ingest", "reembed"] },
	status: { type: "enum", values: ["queued", "running", "completed", "failed", "cancelled"] },
	done: "number|integer",
	total: "number|integer",
	error: { type: "string", nullable: true },
	createdAt: "date",
	startedAt: { type: "date", nullable: true },
	finishedAt: { type: "date", nullable: true }
});
export const jobResponse = jobRow;

// Live notices of jobs to open pages (queued, progress, ended).
export const EMBEDDING_JOBS_LIVE: JobsLive = {
	entity: "embeddings-jobs",
	noun: "embedding job",
	permission: "embeddings:read"
};

export function jobView(j: JobRow) {
	return {
		id: j.id,
		collectionId: (j.collection_id as string | null) ?? null,
		kind: j.kind,
		status: j.status,
		done: j.done,
		total: j.total,
		error: j.error,
		createdAt: j.created_at,
		startedAt: j.started_at ?? null,
		finishedAt: j.finished_at ?? null
	};
}

export const upsertResponse = {
	type: "object",
	props: {
		created: "number|integer",
		updated: "number|integer",
		unchanged: "number|integer",
		documents: listOf({
			type: "object",
			props: {
				id: "uuid",
				sourceId: "string",
				status: { type: "enum", values: ["created", "updated", "unchanged"] }
			}
		})
	}
};

export const searchResponse = {
	type: "object",
	props: {
		results: listOf(
			named("EmbSearchHit", {
				chunkId: "uuid",
				documentId: "uuid",
				sourceId: "string",
				title: "string",
				text: "string",
				heading: { type: "string", nullable: true },
				metadata: "object",
				score: "number",
				scores: {
					type: "object",
					props: {
						vector: { type: "number", optional: true },
						fulltext: { type: "number", optional: true },
						rerank: { type: "number", optional: true }
					}
				},
				rank: "number|integer"
			})
		),
		mode: { type: "enum", values: ["vector", "fulltext", "hybrid"] },
		tookMs: "number"
	}
};

export const modelRow = named("EmbModel", {
	id: "uuid",
	name: "string",
	kind: { type: "enum", values: ["local", "deployment"] },
	deployment: { type: "string", nullable: true },
	dimensions: "number|integer",
	builtIn: "boolean",
	createdAt: "date",
	updatedAt: "date"
});

export const collectionRow = named("EmbCollection", {
	id: "uuid",
	name: "string",
	description: "string",
	modelId: "uuid",
	modelName: "string",
	dimensions: "number|integer",
	documentCount: "number|integer",
	chunkCount: "number|integer",
	status: { type: "enum", values: ["ready", "reembedding"] },
	pendingModelId: { type: "uuid", nullable: true },
	reembedJobId: { type: "uuid", nullable: true },
	createdAt: "date",
	updatedAt: "date"
});

export const documentRow = named("EmbDocument", {
	id: "uuid",
	collectionId: "uuid",
	sourceId: "string",
	title: "string",
	kind: "string",
	language: { type: "string", nullable: true },
	path: { type: "string", nullable: true },
	metadata: "object",
	contentHash: "string",
	chunkCount: "number|integer",
	createdAt: "date",
	updatedAt: "date"
});
