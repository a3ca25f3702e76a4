// Search quality and the same SQL on both engines: 5,000 chunks × 384 dimensions (the local embedder) on PostgreSQL,
// 2,000 on embedded PGlite (its single-threaded WASM inserts are slower), from the topic corpus of
// test/helpers/corpus.ts (documents drawn from topics, queries that paraphrase a document). The HNSW index serves
// vector search (the plan says so) with recall@10 ≥ 0.95 against an exact scan; a filter keeping 1% is answered
// exactly (fewer rows than EMBEDDINGS_EXACT_SEARCH_BELOW) and, through the index's iterative scan, still returns 10.
import fs from "fs";
import os from "os";
import path from "path";
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { corpus } from "../helpers/corpus";
import { getConfig } from "../../lib/config";
import { getDb } from "../../lib/db";
import { embedLocal } from "../../lib/text/local-embedder";
import { vectorLiteral } from "../../services/embeddings/store";
import type { AuthInfo } from "../../lib/permissions";
import { EMBEDDINGS_SERVICES, registerOrg } from "./helpers";

jest.setTimeout(180_000);

const N = 5000;
const gen = corpus("topics", { size: N, seed: 42 });
const documents = Array.from({ length: N }, (_, i) => ({
	sourceId: `c${i}`,
	text: gen.documents(i),
	metadata: { bucket: gen.bucket(i) }
}));

// The module's settings as the search reads them (per call), to choose the path under test.
const settings = () => getConfig().modules.embeddings as { exactSearchBelow: number };

function quality(engine: "postgres" | "pglite") {
	const size = engine === "postgres" ? N : 2000;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let drop: () => Promise<void>;
	let owner: AuthInfo;
	let c: any;
	let queries: string[];

	beforeAll(async () => {
		let env: Record<string, string>;
		if (engine === "postgres") {
			const db = await createTestDatabase();
			env = { DATABASE_URL: db.url };
			drop = () => db.drop();
		} else {
			const dir = fs.mkdtempSync(path.join(os.tmpdir(), "emb-pglite-"));
			env = { DATABASE_URL: "", DATA_DIR: dir };
			drop = async () => fs.rmSync(dir, { recursive: true, force: true });
		}
		t = await createTestBroker(env, EMBEDDINGS_SERVICES);
		owner = (await registerOrg(t.broker, `recall-${engine}@example.com`))("owner");
		c = await t.broker.call<any, any>("embeddings-collections.create", { name: "recall" }, as(owner));
		for (let i = 0; i < size; i += 100)
			await t.broker.call("embeddings.upsert", { id: c.id, documents: documents.slice(i, i + 100) }, as(owner));
		// Queries paraphrase documents of the part ingested.
		const g = corpus("topics", { size: N, seed: 42 });
		for (let i = 0; i < size; i++) g.documents(i);
		queries = g.queries(40);
	}, 180_000);

	afterAll(async () => {
		await t?.stop();
		await drop?.();
	});

	test(`vector search uses the model's HNSW index with recall@10 ≥ 0.95 against exact search (${engine})`, async () => {
		const db = await getDb();
		// As autovacuum (PostgreSQL) or the housekeeping timer (PGlite) would: the planner knows the collection's size.
		await db.query("ANALYZE emb_chunks");
		const [q0] = embedLocal([queries[0]]);
		const plan = await db.transaction(async tx => {
			// PGlite's 2,000 rows fit in few pages, where the planner rightly prefers a scan: there the test shows the
			// index is the one the same SQL is served by when a scan is not cheaper.
			if (engine === "pglite")
				for (const scan of ["seqscan", "bitmapscan"]) await tx.query(`SET LOCAL enable_${scan} = off`);
			return tx.query(
				`EXPLAIN SELECT id FROM emb_chunks c WHERE c.model_id = '00000000-0000-4000-8000-000000000384'
				AND c.collection_id = $2 ORDER BY c.embedding::vector(384) <=> $1::vector(384) LIMIT 10`,
				[vectorLiteral(q0), c.id]
			);
		});
		expect(plan.rows.map(r => Object.values(r)[0]).join("\n")).toMatch(/emb_chunks_hnsw_0+40008/);

		// The index's path: the collection is smaller than the exact-search threshold.
		const threshold = settings().exactSearchBelow;
		settings().exactSearchBelow = 0;
		let found = 0;
		try {
			for (const q of queries) {
				const r = await t.broker.call<any, any>(
					"embeddings.search",
					{ id: c.id, query: q, mode: "vector", k: 10 },
					as(owner)
				);
				const exact = await db.query<{ id: string; d: number }>(
					`SELECT id, embedding <=> $1::vector AS d FROM emb_chunks WHERE collection_id = $2
					ORDER BY embedding <=> $1::vector LIMIT 10`,
					[vectorLiteral(embedLocal([q])[0]), c.id]
				);
				// A hit counts when it is as near as the exact tenth (ties at the boundary are equally right).
				const tenth = Number(exact.rows[9].d) + 1e-9;
				found += r.results.filter((h: any) => 1 - h.scores.vector <= tenth).length;
			}
		} finally {
			settings().exactSearchBelow = threshold;
		}
		const recall = found / (queries.length * 10);
		expect(recall).toBeGreaterThanOrEqual(0.95);
	});

	test(`a filter keeping 1% returns the exact 10 nearest, and 10 through the index too (${engine})`, async () => {
		const db = await getDb();
		const search = (mode: string) =>
			t.broker.call<any, any>(
				"embeddings.search",
				{ id: c.id, query: queries[1], mode, k: 10, filter: { bucket: 42 } },
				as(owner)
			);
		const exact = await db.query<{ id: string }>(
			`SELECT id FROM emb_chunks WHERE collection_id = $2 AND metadata @> '{"bucket": 42}'
			ORDER BY embedding <=> $1::vector, id LIMIT 10`,
			[vectorLiteral(embedLocal([queries[1]])[0]), c.id]
		);
		// The filter keeps 1% (fewer rows than the threshold): ordered exactly.
		const r = await search("vector");
		expect(r.results.map((h: any) => h.chunkId)).toEqual(exact.rows.map(x => x.id));
		const threshold = settings().exactSearchBelow;
		settings().exactSearchBelow = 0;
		try {
			// Through the index: its iterative scan goes on until 10 rows pass the filter.
			for (const mode of ["vector", "hybrid"]) {
				const r = await search(mode);
				expect(r.results).toHaveLength(10);
				expect(r.results.every((h: any) => h.metadata.bucket === 42)).toBe(true);
			}
		} finally {
			settings().exactSearchBelow = threshold;
		}
	});
}

describeWith(["postgres"])("embeddings search quality on PostgreSQL", () => quality("postgres"));
describe("embeddings search quality on embedded PGlite", () => quality("pglite"));
