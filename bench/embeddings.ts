// embeddings: the module in this process (in-process broker, its services), on PostgreSQL and on embedded PGlite:
// - ingestion: BENCH_EMB_CHUNKS one-chunk documents (384 dimensions, the local embedder) through embeddings.upsert
//   in batches of 100, BENCH_EMB_WRITERS at once, with the HNSW index live: chunks/s;
// - index build: the model's HNSW index rebuilt over those rows (REINDEX; PostgreSQL with maintenance_work_mem
//   512MB): seconds;
// - recall@10 of vector search against an exact scan, over 100 queries (a hit as near as the exact tenth counts);
// - search: BENCH_EMB_CALLERS closed-loop callers for BENCH_DURATION_MS per mode (vector, full-text, hybrid): QPS,
//   p50 and p95 latency.
// PGlite runs BENCH_EMB_PGLITE_CHUNKS (default 20,000: single-threaded WASM inserts make 100k take very long).
// Writes bench/results/embeddings.json. Env: BENCH_EMB_ONLY=postgres|pglite, and the module's EMBEDDINGS_* settings.
import fs from "fs";
import os from "os";
import path from "path";
import { ServiceBroker } from "moleculer";
import { createTestDatabase } from "../test/helpers/infra";
import { loadConfig, setConfig } from "../lib/config";
import { acquireDb, getDb, releaseDb } from "../lib/db";
import { brokerOptions } from "../moleculer.config";
import { permissionTable } from "../lib/authz";
import { embedLocal } from "../lib/text/local-embedder";
import { indexName, vectorLiteral, BUILTIN_MODEL_ID } from "../services/embeddings/store";
import type { AuthInfo } from "../lib/permissions";

const CHUNKS = Number(process.env.BENCH_EMB_CHUNKS ?? 100_000);
const PGLITE_CHUNKS = Number(process.env.BENCH_EMB_PGLITE_CHUNKS ?? 20_000);
const WRITERS = Number(process.env.BENCH_EMB_WRITERS ?? 4);
const CALLERS = Number(process.env.BENCH_EMB_CALLERS ?? 8);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5000);
const ONLY = process.env.BENCH_EMB_ONLY;
const SERVICES = [
	"services/auth/auth.service.ts",
	"services/embeddings/embeddings.service.ts",
	"services/embeddings/models.service.ts",
	"services/embeddings/collections.service.ts",
	"services/embeddings/documents.service.ts",
	"services/embeddings/jobs.service.ts"
];

let seed = 7;
const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
// Zipf-like word choice over 20,000 words: a few common, many rare, as in text.
const word = () => `w${Math.floor(20_000 * rand() ** 3)}`;
const sentence = (n: number) => Array.from({ length: n }, word).join(" ");

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

async function run(engine: "postgres" | "pglite", n: number) {
	let env: Record<string, string>;
	let drop: () => Promise<void>;
	if (engine === "postgres") {
		const db = await createTestDatabase();
		env = { DATABASE_URL: db.url };
		drop = () => db.drop();
	} else {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-emb-"));
		env = { DATABASE_URL: "", DATA_DIR: dir };
		drop = async () => fs.rmSync(dir, { recursive: true, force: true });
	}
	// The module's settings from this process's environment (EMBEDDINGS_HNSW_EF_SEARCH=400 npm run bench …).
	const settings = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("EMBEDDINGS_")));
	const config = loadConfig({
		JWT_SECRET: "bench-secret-bench-secret-bench-secret-01",
		LOG_LEVEL: "warn",
		...settings,
		...env
	});
	setConfig(config);
	await acquireDb();
	const broker = new ServiceBroker({ ...brokerOptions(config), logger: false });
	for (const f of SERVICES) broker.loadService(path.resolve(__dirname, "..", f));
	await broker.start();
	try {
		const user: any = await broker.call("auth.register", {
			email: `bench-${engine}@example.com`,
			password: "correct horse battery",
			name: "bench"
		});
		const auth: AuthInfo = {
			kind: "session",
			userId: user.user.id,
			organizationId: user.organization.id,
			role: "owner",
			permissions: [...permissionTable().byRole.owner]
		};
		const call = (action: string, params: object) => broker.call<any, any>(action, params, { meta: { auth } });
		const c = await call("embeddings-collections.create", { name: "bench" });

		// Ingestion.
		let next = 0;
		const t0 = performance.now();
		await Promise.all(
			Array.from({ length: WRITERS }, async () => {
				for (;;) {
					const from = next;
					next += 100;
					if (from >= n) return;
					const documents = Array.from({ length: Math.min(100, n - from) }, (_, i) => ({
						sourceId: `s${from + i}`,
						text: sentence(20),
						metadata: { bucket: (from + i) % 100 }
					}));
					await call("embeddings.upsert", { id: c.id, documents });
				}
			})
		);
		const ingestS = (performance.now() - t0) / 1000;
		const db = await getDb();
		await db.query("ANALYZE emb_chunks");

		// Index build over the rows now there.
		if (engine === "postgres") await db.query("SET maintenance_work_mem = '512MB'");
		// BENCH_EMB_HNSW="m = 32, ef_construction = 128": the index rebuilt with other settings.
		const options = process.env.BENCH_EMB_HNSW;
		if (options && /^[a-z_]+ = \d+(, [a-z_]+ = \d+)*$/.test(options))
			await db.query(`ALTER INDEX ${indexName(BUILTIN_MODEL_ID)} SET (${options})`);
		const t1 = performance.now();
		await db.query(`REINDEX INDEX ${indexName(BUILTIN_MODEL_ID)}`);
		const buildS = (performance.now() - t1) / 1000;

		// Recall@10.
		const queries = Array.from({ length: 100 }, () => sentence(5));
		let found = 0;
		for (const q of queries) {
			const r = await call("embeddings.search", { id: c.id, query: q, mode: "vector", k: 10 });
			const exact = await db.query<{ d: number }>(
				`SELECT embedding <=> $1::vector AS d FROM emb_chunks WHERE collection_id = $2
				ORDER BY embedding <=> $1::vector LIMIT 10`,
				[vectorLiteral(embedLocal([q])[0]), c.id]
			);
			const tenth = Number(exact.rows[9].d) + 1e-9;
			found += r.results.filter((h: any) => 1 - h.scores.vector <= tenth).length;
		}
		const recall = found / (queries.length * 10);

		// Search throughput and latency per mode.
		const search: Record<string, unknown> = {};
		for (const mode of ["vector", "fulltext", "hybrid"]) {
			const latencies: number[] = [];
			let errors = 0;
			const end = performance.now() + DURATION_MS;
			let i = 0;
			await Promise.all(
				Array.from({ length: CALLERS }, async () => {
					while (performance.now() < end) {
						const q = queries[i++ % queries.length].split(" ").slice(0, 3).join(" or ");
						const s = performance.now();
						try {
							await call("embeddings.search", { id: c.id, query: q, mode, k: 10 });
							latencies.push(performance.now() - s);
						} catch {
							errors++;
						}
					}
				})
			);
			latencies.sort((a, b) => a - b);
			search[mode] = {
				qps: round(latencies.length / (DURATION_MS / 1000)),
				p50_ms: round(pct(latencies, 50)),
				p95_ms: round(pct(latencies, 95)),
				errors
			};
		}
		return {
			engine,
			chunks: n,
			dimensions: 384,
			ingest_chunks_per_s: round(n / ingestS),
			hnsw_build_s: round(buildS, 2),
			recall_at_10: round(recall, 3),
			search
		};
	} finally {
		await broker.stop();
		await releaseDb();
		await drop();
	}
}

async function main() {
	const results = [];
	for (const [engine, n] of [
		["postgres", CHUNKS],
		["pglite", PGLITE_CHUNKS]
	] as const) {
		if (ONLY && ONLY !== engine) continue;
		const r = await run(engine, n);
		console.log(JSON.stringify(r));
		results.push(r);
	}
	const load = os.loadavg()[0];
	const out = { at: new Date().toISOString(), cpus: os.cpus().length, load_after: round(load, 2), results };
	fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
	fs.writeFileSync(path.join(__dirname, "results", "embeddings.json"), JSON.stringify(out, null, "\t") + "\n");
	console.table(
		results.flatMap(r =>
			Object.entries(r.search as Record<string, any>).map(([mode, s]) => ({
				engine: r.engine,
				chunks: r.chunks,
				"ingest chunks/s": r.ingest_chunks_per_s,
				"build s": r.hnsw_build_s,
				"recall@10": r.recall_at_10,
				mode,
				qps: s.qps,
				"p95 ms": s.p95_ms
			}))
		)
	);
}

main().catch(err => {
	console.error(err);
	process.exit(1);
});
