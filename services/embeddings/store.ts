// The embeddings module's writes: documents by source id with a content hash, their chunks embedded by a model, and
// the per-model HNSW index. Model calls happen before the transaction that writes (a model may take seconds; a
// transaction must not wait on it).
import crypto from "crypto";
import type { Queryable } from "../../lib/db";
import { chunkText, type ChunkKind } from "../../lib/text/chunk";
import { embedLocal } from "../../lib/text/local-embedder";
import { ExternalFailure } from "../../lib/errors";
import type { Publish } from "../../mixins/events.mixin";

export const BUILTIN_MODEL_ID = "00000000-0000-4000-8000-000000000384";

export interface ModelRow {
	id: string;
	organization_id: string | null;
	name: string;
	kind: "local" | "deployment";
	deployment: string | null;
	dimensions: number;
}

export interface CollectionRow {
	id: string;
	organization_id: string;
	name: string;
	model_id: string;
	pending_model_id: string | null;
	reembed_job_id: string | null;
}

export interface DocumentInput {
	sourceId: string;
	text: string;
	title?: string;
	kind?: ChunkKind;
	language?: string;
	path?: string;
	metadata?: Record<string, unknown>;
}

// Embeds texts with a model; `callAi` reaches ai.embed as the service acting for the organization.
export type CallAi = (action: string, params: unknown) => Promise<any>;

export async function embedTexts(
	model: ModelRow,
	texts: string[],
	batchSize: number,
	callAi: CallAi
): Promise<number[][]> {
	const out: number[][] = [];
	for (let i = 0; i < texts.length; i += batchSize) {
		const batch = texts.slice(i, i + batchSize);
		if (model.kind === "local") {
			out.push(...embedLocal(batch, model.dimensions));
			continue;
		}
		const answer = await callAi("ai.embed", { model: model.deployment, input: batch });
		const data = [...(answer?.data ?? [])].sort((a: any, b: any) => a.index - b.index);
		if (data.length !== batch.length)
			throw new ExternalFailure(
				`model ${model.name} returned ${data.length} embeddings for ${batch.length} texts`
			);
		for (const d of data) {
			if (!Array.isArray(d.embedding) || d.embedding.length !== model.dimensions)
				throw new ExternalFailure(
					`model ${model.name} returned ${d.embedding?.length ?? 0} dimensions, ${model.dimensions} expected`
				);
			out.push(d.embedding);
		}
	}
	return out;
}

// Meters what the built-in embedder embedded for the documents written in this transaction: one
// embedding.usage.recorded per local model (a model of a deployment is metered by ai.embed on ai.events, so it is
// left out here and never counted twice). Published with the write, so a rolled-back step meters nothing.
export function publishLocalUsage(
	publish: Publish,
	organizationId: string,
	models: ModelRow[],
	prepared: PreparedDocument[]
): void {
	const chunks = prepared.flatMap(p => p.chunks);
	if (!chunks.length) return;
	const tokens = chunks.reduce((n, c) => n + c.tokens, 0);
	for (const m of models)
		if (m.kind === "local")
			publish("embedding.usage.recorded", {
				organizationId,
				modelId: m.id,
				model: m.name,
				texts: chunks.length,
				tokens
			});
}

export const vectorLiteral = (v: number[]) => `[${v.map(x => (Number.isFinite(x) ? x : 0)).join(",")}]`;

// What is chunked and embedded: equal hash, equal chunks and vectors.
export function contentHash(d: DocumentInput): string {
	const parts = [d.text, d.title ?? "", d.kind ?? "prose", d.language ?? "", d.path ?? ""];
	return crypto.createHash("sha256").update(parts.join("\0")).digest("hex");
}

export interface PreparedChunk {
	index: number;
	text: string;
	tokens: number;
	heading?: string;
	symbol?: string;
}

export interface PreparedDocument {
	input: DocumentInput;
	hash: string;
	chunks: PreparedChunk[];
	// model id -> one vector per chunk
	vectors: Map<string, number[][]>;
}

export function chunksOf(d: DocumentInput): PreparedChunk[] {
	const chunks = chunkText(d.text, { kind: d.kind, language: d.language, path: d.path });
	return chunks.map(c => ({ index: c.index, text: c.text, tokens: c.tokens, heading: c.heading, symbol: c.symbol }));
}

// Chunks and embeds documents with every model given, all texts of a model in batched calls.
export async function prepareDocuments(
	docs: DocumentInput[],
	hashes: string[],
	models: ModelRow[],
	batchSize: number,
	callAi: CallAi
): Promise<PreparedDocument[]> {
	const prepared = docs.map((input, i) => ({
		input,
		hash: hashes[i],
		chunks: chunksOf(input),
		vectors: new Map<string, number[][]>()
	}));
	const texts = prepared.flatMap(p => p.chunks.map(c => embeddable(p.input, c)));
	for (const model of models) {
		const vectors = await embedTexts(model, texts, batchSize, callAi);
		let at = 0;
		for (const p of prepared) {
			p.vectors.set(model.id, vectors.slice(at, at + p.chunks.length));
			at += p.chunks.length;
		}
	}
	return prepared;
}

// A chunk is embedded with its document's title and its heading, which say what it is about.
const embeddable = (d: DocumentInput, c: PreparedChunk) => [d.title, c.heading, c.text].filter(Boolean).join("\n");

// Writes a document's chunks for one model, replacing the ones it had for that model.
export async function writeChunks(
	tx: Queryable,
	organizationId: string,
	collectionId: string,
	documentId: string,
	modelId: string,
	doc: PreparedDocument
): Promise<void> {
	await tx.query("DELETE FROM emb_chunks WHERE document_id = $1 AND model_id = $2", [documentId, modelId]);
	await insertChunks(tx, organizationId, collectionId, [{ documentId, modelId, doc }]);
}

// Every chunk of the given documents and models in one statement.
async function insertChunks(
	tx: Queryable,
	organizationId: string,
	collectionId: string,
	items: { documentId: string; modelId: string; doc: PreparedDocument }[]
): Promise<void> {
	const cols = {
		document: [] as string[],
		model: [] as string[],
		hash: [] as string[],
		title: [] as string[],
		metadata: [] as string[],
		index: [] as number[],
		text: [] as string[],
		tokens: [] as number[],
		heading: [] as (string | null)[],
		symbol: [] as (string | null)[],
		embedding: [] as string[]
	};
	for (const { documentId, modelId, doc } of items) {
		const vectors = doc.vectors.get(modelId);
		if (!vectors) throw new Error(`no vectors of model ${modelId}`);
		const metadata = JSON.stringify(doc.input.metadata ?? {});
		doc.chunks.forEach((c, i) => {
			cols.document.push(documentId);
			cols.model.push(modelId);
			cols.hash.push(doc.hash);
			cols.title.push(doc.input.title ?? "");
			cols.metadata.push(metadata);
			cols.index.push(c.index);
			cols.text.push(c.text);
			cols.tokens.push(c.tokens);
			cols.heading.push(c.heading ?? null);
			cols.symbol.push(c.symbol ?? null);
			cols.embedding.push(vectorLiteral(vectors[i]));
		});
	}
	if (!cols.document.length) return;
	await tx.query(
		`INSERT INTO emb_chunks (organization_id, collection_id, document_id, model_id, content_hash, index, text, tokens,
			heading, symbol, metadata, embedding, tsv)
		SELECT $1, $2, x.document_id, x.model_id, x.hash, x.index, x.text, x.tokens, x.heading, x.symbol, x.metadata::jsonb,
			x.embedding::vector,
			setweight(to_tsvector('english', x.title || ' ' || coalesce(x.heading, '')), 'A') || to_tsvector('english', x.text)
		FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::int[], $9::text[], $10::int[],
			$11::text[], $12::text[], $13::text[])
			AS x(document_id, model_id, hash, title, metadata, index, text, tokens, heading, symbol, embedding)`,
		[
			organizationId,
			collectionId,
			cols.document,
			cols.model,
			cols.hash,
			cols.title,
			cols.metadata,
			cols.index,
			cols.text,
			cols.tokens,
			cols.heading,
			cols.symbol,
			cols.embedding
		]
	);
}

export interface UpsertOutcome {
	id: string;
	sourceId: string;
	status: "created" | "updated" | "unchanged";
}

// Inserts or updates documents whose content changed and replaces their chunks for the collection's models, in the
// caller's transaction, in three statements whatever the number of documents. A document another writer changed
// to the same content meanwhile counts as unchanged.
export async function writeDocuments(
	tx: Queryable,
	publish: Publish,
	collection: CollectionRow,
	prepared: PreparedDocument[]
): Promise<UpsertOutcome[]> {
	if (!prepared.length) return [];
	// In source id order, so concurrent writers lock rows in the same order.
	const docs = [...prepared].sort((a, b) => (a.input.sourceId < b.input.sourceId ? -1 : 1));
	const col = <T>(f: (d: DocumentInput, p: PreparedDocument) => T) => docs.map(p => f(p.input, p));
	const { rows } = await tx.query<{ id: string; source_id: string; created: boolean }>(
		`INSERT INTO emb_documents (organization_id, collection_id, source_id, title, kind, language, path, metadata,
			text, content_hash)
		SELECT $1, $2, x.source_id, x.title, x.kind, x.language, x.path, x.metadata::jsonb, x.text, x.hash
		FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
			AS x(source_id, title, kind, language, path, metadata, text, hash)
		ON CONFLICT (collection_id, source_id) DO UPDATE SET title = EXCLUDED.title, kind = EXCLUDED.kind,
			language = EXCLUDED.language, path = EXCLUDED.path, metadata = EXCLUDED.metadata, text = EXCLUDED.text,
			content_hash = EXCLUDED.content_hash, updated_at = now()
		WHERE emb_documents.content_hash <> EXCLUDED.content_hash OR emb_documents.metadata <> EXCLUDED.metadata
		RETURNING id, source_id, (xmax = 0) AS created`,
		[
			collection.organization_id,
			collection.id,
			col(d => d.sourceId),
			col(d => d.title ?? ""),
			col(d => d.kind ?? "prose"),
			col(d => d.language ?? null),
			col(d => d.path ?? null),
			col(d => JSON.stringify(d.metadata ?? {})),
			col(d => d.text),
			col((_, p) => p.hash)
		]
	);
	const written = new Map(rows.map(r => [r.source_id, r]));
	// Only the models the collection has now (a re-embed may have switched it while this was embedded).
	const models = [collection.model_id, ...(collection.pending_model_id ? [collection.pending_model_id] : [])];
	if (rows.length) {
		await tx.query("DELETE FROM emb_chunks WHERE document_id = ANY($1::uuid[])", [rows.map(r => r.id)]);
		const items = docs
			.filter(p => written.has(p.input.sourceId))
			.flatMap(p => models.map(modelId => ({ documentId: written.get(p.input.sourceId)!.id, modelId, doc: p })));
		await insertChunks(tx, collection.organization_id, collection.id, items);
	}
	const unchanged = docs.filter(p => !written.has(p.input.sourceId)).map(p => p.input.sourceId);
	const existing = unchanged.length
		? await tx.query<{ id: string; source_id: string }>(
				"SELECT id, source_id FROM emb_documents WHERE collection_id = $1 AND source_id = ANY($2)",
				[collection.id, unchanged]
			)
		: { rows: [] };
	const ids = new Map(existing.rows.map(r => [r.source_id, r.id]));
	return prepared.map(p => {
		const r = written.get(p.input.sourceId);
		if (!r) return { id: ids.get(p.input.sourceId)!, sourceId: p.input.sourceId, status: "unchanged" };
		const data = { collectionId: collection.id, documentId: r.id, sourceId: r.source_id, chunks: p.chunks.length };
		publish(r.created ? "embedding.document.created" : "embedding.document.updated", {
			organizationId: collection.organization_id,
			...data
		});
		return { id: r.id, sourceId: r.source_id, status: r.created ? "created" : "updated" };
	});
}

// The documents whose stored hash equals the given one (nothing to embed): source id -> document id, and whether
// the metadata is the same too.
export async function unchangedDocuments(
	db: Queryable,
	collectionId: string,
	docs: DocumentInput[],
	hashes: string[]
): Promise<Map<string, { id: string; sameMetadata: boolean }>> {
	const { rows } = await db.query<{ id: string; source_id: string; content_hash: string; metadata: unknown }>(
		"SELECT id, source_id, content_hash, metadata FROM emb_documents WHERE collection_id = $1 AND source_id = ANY($2)",
		[collectionId, docs.map(d => d.sourceId)]
	);
	const stored = new Map(rows.map(r => [r.source_id, r]));
	const same = new Map<string, { id: string; sameMetadata: boolean }>();
	docs.forEach((d, i) => {
		const r = stored.get(d.sourceId);
		if (r && r.content_hash === hashes[i])
			same.set(d.sourceId, { id: r.id, sameMetadata: sameJson(r.metadata, d.metadata ?? {}) });
	});
	return same;
}

// jsonb comes back with its keys sorted; compare independent of key order.
function sameJson(a: unknown, b: unknown): boolean {
	const norm = (v: any): unknown =>
		v && typeof v === "object" && !Array.isArray(v)
			? Object.fromEntries(
					Object.keys(v)
						.sort()
						.map(k => [k, norm(v[k])])
				)
			: v;
	return JSON.stringify(norm(a)) === JSON.stringify(norm(b));
}

// The index a model's vectors are searched by: HNSW over `embedding::vector(N)`, only that model's rows.
export function indexName(modelId: string): string {
	return `emb_chunks_hnsw_${modelId.replace(/-/g, "")}`;
}

export async function createModelIndex(
	tx: Queryable,
	model: Pick<ModelRow, "id" | "dimensions">,
	hnsw: { m: number; efConstruction: number }
): Promise<void> {
	const dims = Math.trunc(model.dimensions);
	if (!/^[0-9a-f-]{36}$/.test(model.id) || !(dims > 0)) throw new Error("bad model for an index");
	const m = Math.trunc(hnsw.m);
	const ef = Math.trunc(hnsw.efConstruction);
	await tx.query(
		`CREATE INDEX IF NOT EXISTS ${indexName(model.id)} ON emb_chunks
		USING hnsw ((embedding::vector(${dims})) vector_cosine_ops) WITH (m = ${m}, ef_construction = ${ef})
		WHERE model_id = '${model.id}'`
	);
}
