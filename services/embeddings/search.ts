// Search over a collection's chunks of its current model: vector (HNSW with iterative scans, so a metadata filter is
// applied inside the index scan and k rows still come back), full-text (tsvector), and hybrid (both fused by
// weighted reciprocal rank). The filter is part of each query's WHERE, never applied to a top k afterwards.
import type { Db, Queryable } from "../../lib/db";
import { invalid } from "../../lib/errors";
import { vectorLiteral } from "./store";

export type Filter = Record<string, unknown>;

export interface Hit {
	chunkId: string;
	documentId: string;
	sourceId: string;
	title: string;
	text: string;
	heading: string | null;
	metadata: Record<string, unknown>;
	score: number;
	scores: { vector?: number; fulltext?: number; rerank?: number };
	rank: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const KEY = /^[A-Za-z0-9_.:-]{1,100}$/;
const scalar = (v: unknown) => v === null || ["string", "number", "boolean"].includes(typeof v);

// `{ key: value }` is equality, `{ key: { in: [values] } }` membership; keys are ANDed. Returns SQL over alias c and
// its parameters, numbered from `from`.
export function filterSql(filter: Filter | undefined, from: number): { sql: string; params: unknown[] } {
	const clauses: string[] = [];
	const params: unknown[] = [];
	for (const [key, value] of Object.entries(filter ?? {})) {
		if (!KEY.test(key)) throw invalid(`filter.${key}`, "is not a metadata key (letters, digits, _ . : -)");
		if (scalar(value)) {
			params.push(JSON.stringify({ [key]: value }));
			clauses.push(`c.metadata @> $${from + params.length - 1}::jsonb`);
			continue;
		}
		const list = (value as { in?: unknown })?.in;
		if (
			typeof value !== "object" ||
			Object.keys(value as object).length !== 1 ||
			!Array.isArray(list) ||
			!list.every(scalar) ||
			list.length > 1000
		)
			throw invalid(`filter.${key}`, "must be a value or { in: [values] } (at most 1000)");
		params.push(key, JSON.stringify(list));
		const k = from + params.length - 2;
		clauses.push(`$${k + 1}::jsonb @> jsonb_build_array(c.metadata -> $${k}::text)`);
	}
	return { sql: clauses.length ? ` AND ${clauses.join(" AND ")}` : "", params };
}

interface Row {
	id: string;
	document_id: string;
	source_id: string;
	title: string;
	text: string;
	heading: string | null;
	metadata: Record<string, unknown>;
	value: number;
}

const COLUMNS = `c.id, c.document_id, d.source_id, d.title, c.text, c.heading, c.metadata`;

// The k chunks nearest the query vector (cosine), best first; `value` is the cosine similarity. A model's HNSW index
// holds the chunks of every collection on that model, so a collection (with its filter) is a filter on the index:
// when few rows pass it (below `exactBelow`), ordering them exactly is both exact and cheaper than an iterative
// index scan, which for a small or correlated subset walks far and misses neighbours (bench/README.md: recall 0.5 for
// a 1% filter that follows the topics). Otherwise the index, with iterative scans.
export async function vectorSearch(
	db: Db,
	s: { collectionId: string; modelId: string; dimensions: number; vector: number[]; k: number; filter?: Filter },
	hnsw: { efSearch: number; exactBelow: number }
): Promise<Row[]> {
	const dims = Math.trunc(s.dimensions);
	if (!UUID.test(s.modelId)) throw new Error("bad model id");
	const f = filterSql(s.filter, 4);
	const params = [vectorLiteral(s.vector), s.collectionId, s.k, ...f.params];
	// The model as a literal: the planner matches it to the model's partial index whatever the plan's parameters.
	const where = `c.model_id = '${s.modelId}' AND c.collection_id = $2${f.sql}`;
	// The k nearest ids first, then their text and document (the join carries only k rows).
	const nearest = (order: string) =>
		`WITH nearest AS MATERIALIZED (
			SELECT c.id, ${order} AS distance FROM emb_chunks c WHERE ${where} ORDER BY ${order} LIMIT $3)
		SELECT ${COLUMNS}, 1 - n.distance AS value FROM nearest n JOIN emb_chunks c ON c.id = n.id
		JOIN emb_documents d ON d.id = c.document_id ORDER BY n.distance, c.id`;
	// The filter's rows, ordered exactly (the untyped expression is not the index's, so no index scan).
	const exact = () => rowsOf(db, nearest("c.embedding <=> $1::vector"), params);
	if (hnsw.exactBelow > 0) {
		const counted = filterSql(s.filter, 3);
		const { rows } = await db.query<{ n: number }>(
			`SELECT count(*)::int AS n FROM (SELECT 1 FROM emb_chunks c
			WHERE c.model_id = '${s.modelId}' AND c.collection_id = $1${counted.sql} LIMIT $2) x`,
			[s.collectionId, hnsw.exactBelow, ...counted.params]
		);
		if (rows[0].n < hnsw.exactBelow) return exact();
	}
	const indexed = await db.transaction(async tx => {
		// Candidates examined per scan; with relaxed_order the index scan goes on past ef_search until k rows pass the
		// filter (pgvector ≥ 0.8), in an order close to exact that the outer query makes exact.
		await tx.query("SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', $2, true)", [
			String(Math.max(hnsw.efSearch, s.k)),
			"relaxed_order"
		]);
		return rowsOf(tx, nearest(`c.embedding::vector(${dims}) <=> $1::vector(${dims})`), params);
	});
	// Fewer than k: the index scan gave up (hnsw.max_scan_tuples) before k rows passed the filter.
	return indexed.length >= s.k ? indexed : exact();
}

// websearch syntax's OR between words ("a or b", "a OR b"); without it the words are ANDed.
const OR = /(^|\s)or(\s|$)/i;

// The k chunks that best match the query's words (websearch syntax: "quoted phrases", or, -not). Ranking reads every
// candidate's tsvector, so a broad query (common words ORed) would rank most of the collection: at most `candidates`
// matches are ranked, and for an OR query also up to `candidates` chunks matching all its words (the ones ts_rank_cd
// puts first), so a cut-off broad query still ranks its best matches. Only the k ranked ids are then joined to
// their text and document.
export async function fulltextSearch(
	db: Queryable,
	s: { collectionId: string; modelId: string; query: string; k: number; filter?: Filter },
	candidates: number
): Promise<Row[]> {
	const f = filterSql(s.filter, 6);
	const all = OR.test(s.query) ? s.query.replace(new RegExp(OR.source, "gi"), " ") : null;
	const allAt = 6 + f.params.length;
	const match = (q: string) => `c.tsv @@ websearch_to_tsquery('english', ${q})`;
	const arm = (where: string) => `(SELECT c.id, c.tsv FROM emb_chunks c
			WHERE c.model_id = $2 AND c.collection_id = $3 AND ${where}${f.sql} LIMIT $5)`;
	return rowsOf(
		db,
		`WITH candidates AS (
			${
				all === null
					? arm(match("$1"))
					: `${arm(match(`$${allAt}`))} UNION ALL ${arm(`${match("$1")} AND NOT ${match(`$${allAt}`)}`)}`
			}
		), ranked AS MATERIALIZED (
			SELECT x.id, ts_rank_cd(x.tsv, websearch_to_tsquery('english', $1), 1) AS value FROM candidates x
			ORDER BY value DESC, x.id LIMIT $4
		)
		SELECT ${COLUMNS}, r.value FROM ranked r JOIN emb_chunks c ON c.id = r.id JOIN emb_documents d ON d.id = c.document_id
		ORDER BY r.value DESC, c.id`,
		[s.query, s.modelId, s.collectionId, s.k, candidates, ...f.params, ...(all === null ? [] : [all])]
	);
}

async function rowsOf(db: Queryable, sql: string, params: unknown[]): Promise<Row[]> {
	const { rows } = await db.query<Row>(sql, params);
	return rows.map(r => ({ ...r, value: Number(r.value) }));
}

const RRF_K = 60;

// Weighted reciprocal rank fusion: each list adds weight / (60 + rank) for the chunks it ranks.
export function fuse(
	lists: { rows: Row[]; weight: number; key: "vector" | "fulltext" }[],
	k: number
): Omit<Hit, "rank">[] {
	const byId = new Map<string, Omit<Hit, "rank">>();
	for (const { rows, weight, key } of lists)
		rows.forEach((r, i) => {
			const hit = byId.get(r.id) ?? toHit(r, 0, {});
			hit.scores[key] = r.value;
			hit.score += weight / (RRF_K + i + 1);
			byId.set(r.id, hit);
		});
	return [...byId.values()].sort((a, b) => b.score - a.score || a.chunkId.localeCompare(b.chunkId)).slice(0, k);
}

export function toHit(r: Row, score: number, scores: Hit["scores"]): Omit<Hit, "rank"> {
	return {
		chunkId: r.id,
		documentId: r.document_id,
		sourceId: r.source_id,
		title: r.title,
		text: r.text,
		heading: r.heading,
		metadata: r.metadata,
		score,
		scores
	};
}
