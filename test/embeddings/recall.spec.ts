// Search quality and the same SQL on both engines: 5,000 chunks × 384 dimensions (the local embedder) on PostgreSQL,
// 2,000 on embedded PGlite (its single-threaded WASM inserts are slower). The HNSW index serves vector search (the plan says so) with recall@10 ≥ 0.95 against an
// exact scan, and a filter keeping 1% of the collection still returns 10 rows.
import fs from "fs";
import os from "os";
import path from "path";
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { getDb } from "../../lib/db";
import { embedLocal } from "../../lib/text/local-embedder";
import { vectorLiteral } from "../../services/embeddings/store";
import type { AuthInfo } from "../../lib/permissions";
import { EMBEDDINGS_SERVICES, registerOrg } from "./helpers";

jest.setTimeout(180_000);

// A deterministic corpus: 12 words each from a 3,000-word vocabulary.
function random(seed: number) {
	return () => {
		seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
		return seed / 2 ** 32;
	};
}
const rand = random(42);
const word = () => `w${Math.floor(rand() * 3000)}`;
const sentence = (n: number) => Array.from({ length: n }, word).join(" ");
const N = 5000;
const corpus = Array.from({ length: N }, (_, i) => ({
	sourceId: `c${i}`,
	text: sentence(12),
	metadata: { bucket: i % 100 }
}));
const queries = Array.from({ length: 40 }, () => sentence(4));

function quality(engine: "postgres" | "pglite") {
	const size = engine === "postgres" ? N : 2000;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let drop: () => Promise<void>;
	let owner: AuthInfo;
	let c: any;

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
			await t.broker.call("embeddings.upsert", { id: c.id, documents: corpus.slice(i, i + 100) }, as(owner));
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
		const plan = await db.query(
			`EXPLAIN SELECT id FROM emb_chunks c WHERE c.model_id = '00000000-0000-4000-8000-000000000384'
			AND c.collection_id = $2 ORDER BY c.embedding::vector(384) <=> $1::vector(384) LIMIT 10`,
			[vectorLiteral(q0), c.id]
		);
		expect(plan.rows.map(r => Object.values(r)[0]).join("\n")).toMatch(/emb_chunks_hnsw_0+40008/);

		let found = 0;
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
		const recall = found / (queries.length * 10);
		expect(recall).toBeGreaterThanOrEqual(0.95);
	});

	test(`a filter keeping 1% still returns 10 rows (${engine})`, async () => {
		for (const mode of ["vector", "hybrid"]) {
			const r = await t.broker.call<any, any>(
				"embeddings.search",
				{ id: c.id, query: queries[1], mode, k: 10, filter: { bucket: 42 } },
				as(owner)
			);
			expect(r.results).toHaveLength(10);
			expect(r.results.every((h: any) => h.metadata.bucket === 42)).toBe(true);
		}
	});
}

describeWith(["postgres"])("embeddings search quality on PostgreSQL", () => quality("postgres"));
describe("embeddings search quality on embedded PGlite", () => quality("pglite"));
