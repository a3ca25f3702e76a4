// Upserting documents into a collection (the upsert action and ingest jobs) and re-embedding a collection with a
// new model (reembed jobs): what is shared by the services of the module.
import { getDb, type Queryable } from "../../lib/db";
import type { Context } from "moleculer";
import { authOf } from "../../lib/authz";
import { forbidden, notFound } from "../../lib/errors";
import { moduleSettings } from "../../lib/config";
import type { Publish } from "../../mixins/events.mixin";
import embeddingsModule from "./embeddings.module";
import {
	contentHash,
	prepareDocuments,
	publishLocalUsage,
	unchangedDocuments,
	writeChunks,
	writeDocuments,
	type CallAi,
	type CollectionRow,
	type DocumentInput,
	type ModelRow,
	type PreparedDocument,
	type UpsertOutcome
} from "./store";

export interface Writer {
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
	callForOrganization(organizationId: string, action: string, params: unknown): Promise<unknown>;
}

export const aiCaller =
	(svc: Writer, organizationId: string): CallAi =>
	(action, params) =>
		svc.callForOrganization(organizationId, action, params);

// The collection of the organization, or a 404 naming it.
export async function collectionOf(db: Queryable, organizationId: string, id: string): Promise<CollectionRow> {
	const { rows } = await db.query<CollectionRow>(
		"SELECT * FROM emb_collections WHERE id = $1::text::uuid AND organization_id = $2",
		[id, organizationId]
	);
	if (!rows[0]) throw notFound("collection", "id");
	return rows[0];
}

export async function modelOf(db: Queryable, id: string): Promise<ModelRow> {
	const { rows } = await db.query<ModelRow>("SELECT * FROM emb_models WHERE id = $1", [id]);
	return rows[0];
}

// The models a write embeds with: the collection's, and during a re-embed the one it is moving to.
async function modelsOf(db: Queryable, c: CollectionRow): Promise<ModelRow[]> {
	const ids = [c.model_id, ...(c.pending_model_id ? [c.pending_model_id] : [])];
	return Promise.all(ids.map(id => modelOf(db, id)));
}

export interface UpsertResult {
	created: number;
	updated: number;
	unchanged: number;
	documents: UpsertOutcome[];
}

// The transaction the writes of an upsert are made in: the service's own (withEvents), or a job's step, which
// also records the job's progress and holds only while the job is not cancelled.
export type WriteIn = <T>(fn: (tx: Queryable, publish: Publish) => Promise<T>) => Promise<T>;

// Documents whose content hash and metadata are stored already are left alone; a metadata-only change updates the
// rows without embedding; the rest are chunked and embedded outside the transaction, then written in one.
export async function upsertDocuments(
	svc: Writer,
	collectionId: string,
	organizationId: string,
	docs: DocumentInput[],
	writeIn: WriteIn = fn => svc.withEvents(fn)
): Promise<UpsertResult> {
	const db = await getDb();
	const collection = await collectionOf(db, organizationId, collectionId);
	const hashes = docs.map(contentHash);
	const stored = await unchangedDocuments(db, collection.id, docs, hashes);
	const same = docs.filter(d => stored.get(d.sourceId)?.sameMetadata);
	const metadataOnly = docs.filter(d => stored.has(d.sourceId) && !stored.get(d.sourceId)!.sameMetadata);
	const changed = docs.filter(d => !stored.has(d.sourceId));
	const models = await modelsOf(db, collection);
	const batch = moduleSettings(embeddingsModule).batchSize;
	const prepared = await prepareDocuments(
		changed,
		changed.map(d => hashes[docs.indexOf(d)]),
		models,
		batch,
		aiCaller(svc, organizationId)
	);
	const written = await writeIn(async (tx, publish) => {
		// The model may have switched while embedding (a re-embed finished): vectors of the model the collection
		// serves now are required, or the chunks would be searched under the wrong model.
		const now = await collectionOf(tx, organizationId, collectionId);
		const missing = [now.model_id, now.pending_model_id].filter(m => m && !models.some(x => x.id === m));
		if (missing.length) throw new Retry();
		const out = await writeDocuments(tx, publish, now, prepared);
		publishLocalUsage(publish, organizationId, models, prepared);
		for (const d of metadataOnly) {
			const id = stored.get(d.sourceId)!.id;
			const meta = JSON.stringify(d.metadata ?? {});
			await tx.query("UPDATE emb_documents SET metadata = $2, updated_at = now() WHERE id = $1", [id, meta]);
			await tx.query("UPDATE emb_chunks SET metadata = $2 WHERE document_id = $1", [id, meta]);
			publish("embedding.document.updated", {
				organizationId,
				collectionId,
				documentId: id,
				sourceId: d.sourceId,
				chunks: -1
			});
			out.push({ id, sourceId: d.sourceId, status: "updated" });
		}
		return out;
	}).catch(async err => {
		if (err instanceof Retry) return undefined;
		throw err;
	});
	if (!written) return upsertDocuments(svc, collectionId, organizationId, docs, writeIn);
	const unchanged = same.map(d => ({ id: stored.get(d.sourceId)!.id, sourceId: d.sourceId, status: "unchanged" }));
	const bySource = new Map<string, UpsertOutcome>(
		[...written, ...unchanged].map(o => [o.sourceId, o as UpsertOutcome])
	);
	const documents = docs.map(d => bySource.get(d.sourceId)!);
	const count = (s: string) => documents.filter(d => d.status === s).length;
	return { created: count("created"), updated: count("updated"), unchanged: count("unchanged"), documents };
}

class Retry extends Error {}

// Stages an ingest job's documents (in the transaction that queues it).
export async function stageDocuments(tx: Queryable, jobId: string, documents: DocumentInput[]): Promise<void> {
	// In slices of 1,000: no statement carries the whole set (PGlite copies each parameter into its heap).
	for (let i = 0; i < documents.length; i += 1000)
		await tx.query(
			`INSERT INTO emb_job_documents (job_id, position, document)
			SELECT $1, $2 + d.n - 1, d.value FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS d(value, n)`,
			[jobId, i, JSON.stringify(documents.slice(i, i + 1000))]
		);
}

// The next `limit` documents (by id, after `after`) without chunks of `model` for their current content, chunked and
// embedded (outside any transaction); a resumed re-embed finds nothing left to redo for what it finished.
export async function nextToReembed(
	svc: Writer,
	collection: CollectionRow,
	model: ModelRow,
	after: string | null,
	limit: number
): Promise<{ ids: string[]; prepared: PreparedDocument[] }> {
	const db = await getDb();
	const { rows } = await db.query<DocumentInput & { id: string; hash: string }>(
		`SELECT d.id, d.source_id AS "sourceId", d.text, d.title, d.kind, d.language, d.path, d.metadata,
			d.content_hash AS hash
		FROM emb_documents d WHERE d.collection_id = $1 AND ($2::uuid IS NULL OR d.id > $2)
		AND NOT EXISTS (SELECT 1 FROM emb_chunks c WHERE c.document_id = d.id AND c.model_id = $3
			AND c.content_hash = d.content_hash)
		ORDER BY d.id LIMIT $4`,
		[collection.id, after, model.id, limit]
	);
	const batch = moduleSettings(embeddingsModule).batchSize;
	const call = aiCaller(svc, collection.organization_id);
	const prepared = await prepareDocuments(
		rows,
		rows.map(r => r.hash),
		[model],
		batch,
		call
	);
	return { ids: rows.map(r => r.id), prepared };
}

// Writes re-embedded chunks of documents whose content is still what was embedded (a changed one is picked up
// again: the upsert that changed it wrote both models' chunks, or the next pass does).
export async function writeReembedded(
	tx: Queryable,
	publish: Publish,
	collection: CollectionRow,
	model: ModelRow,
	ids: string[],
	prepared: PreparedDocument[]
): Promise<void> {
	publishLocalUsage(publish, collection.organization_id, [model], prepared);
	for (let i = 0; i < ids.length; i++) {
		const { rowCount } = await tx.query(
			"SELECT 1 FROM emb_documents WHERE id = $1 AND content_hash = $2 FOR UPDATE",
			[ids[i], prepared[i].hash]
		);
		if (rowCount) await writeChunks(tx, collection.organization_id, collection.id, ids[i], model.id, prepared[i]);
	}
}

// The caller's organization: every action of the module is scoped to it.
export function orgOf(ctx: Context): string {
	const org = authOf(ctx)?.organizationId;
	if (!org) throw forbidden("no organization selected");
	return org;
}

// The page parameters of a list (as moleculer-db's lists take them) and its answer.
export const pageParams = {
	page: { type: "number", integer: true, min: 1, max: 100_000, optional: true, convert: true, label: "Page" },
	pageSize: { type: "number", integer: true, min: 1, max: 100, optional: true, convert: true, label: "Page size" }
};

export async function paged<T>(
	db: Queryable,
	q: { select: string; from: string; order: string },
	params: unknown[],
	p: { page?: number; pageSize?: number }
) {
	const page = p.page ?? 1;
	const pageSize = p.pageSize ?? 20;
	const total = (await db.query<{ n: number }>(`SELECT count(*)::int AS n ${q.from}`, params)).rows[0].n;
	const n = params.length;
	const { rows } = await db.query<T>(`${q.select} ${q.from} ORDER BY ${q.order} LIMIT $${n + 1} OFFSET $${n + 2}`, [
		...params,
		pageSize,
		(page - 1) * pageSize
	]);
	return { rows, total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
}
