// embeddings: the module in this process (in-process broker, its services), on PostgreSQL and on embedded PGlite:
// - corpus: BENCH_EMB_CORPUS (test/helpers/corpus.ts): "topics" (default: documents drawn from topics, queries that
//   paraphrase a document, as real text and real embeddings have) or "random" (near-orthogonal vectors, the worst
//   case; bench/embeddings-hnsw.ts measures both on raw pgvector without ingesting through the module);
// - ingestion: BENCH_EMB_CHUNKS one-chunk documents (384 dimensions, the local embedder) through embeddings.upsert
//   in batches of 100, BENCH_EMB_WRITERS at once, with the HNSW index live: chunks/s;
// - index build: the model's HNSW index rebuilt over those rows (REINDEX; PostgreSQL with maintenance_work_mem
//   512MB): seconds;
// - recall@10 of vector search through the index against an exact scan, over 100 queries (a hit as near as the
//   exact tenth counts), per ef_search in BENCH_EMB_EF (the module's setting changed between rounds), and of a
//   search filtered to 1% (exact below EMBEDDINGS_EXACT_SEARCH_BELOW rows, as the module does, and through the index);
// - search: BENCH_EMB_CALLERS closed-loop callers for BENCH_DURATION_MS per mode (vector, full-text, hybrid, and
//   full-text and hybrid with the full-text candidate bound off, as before it), alternating with a floor (the
//   collection's get action, the same path without a search) in the same run: QPS, p50 and p95 latency.
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
import { getConfig } from "../lib/config";
import { corpus, type CorpusKind } from "../test/helpers/corpus";
import type { AuthInfo } from "../lib/permissions";

const CHUNKS = Number(process.env.BENCH_EMB_CHUNKS ?? 100_000);
const PGLITE_CHUNKS = Number(process.env.BENCH_EMB_PGLITE_CHUNKS ?? 20_000);
const WRITERS = Number(process.env.BENCH_EMB_WRITERS ?? 4);
const CALLERS = Number(process.env.BENCH_EMB_CALLERS ?? 8);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5000);
const ONLY = process.env.BENCH_EMB_ONLY;
const CORPUS = (process.env.BENCH_EMB_CORPUS ?? "topics") as CorpusKind;
const EFS = (process.env.BENCH_EMB_EF ?? "100,200,400,800").split(",").map(Number);
const SERVICES = [
	"services/auth/auth.service.ts",
	"services/embeddings/embeddings.service.ts",
	"services/embeddings/models.service.ts",
	"services/embeddings/collections.service.ts",
	"services/embeddings/documents.service.ts",
	"services/embeddings/jobs.service.ts"
];

// The module's settings as searches read them (per call): the rounds below change them.
type Settings = { hnswEfSearch: number; exactSearchBelow: number; fulltextCandidates: number };
const tuned = () => getConfig().modules.embeddings as Settings;

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
		const gen = corpus(CORPUS, { size: n });
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
						text: gen.documents(from + i),
						metadata: { bucket: gen.bucket(from + i) }
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

		// Recall@10 through the index, per ef_search; then a 1% filter, exact (the module's default path) and through
		// the index.
		const queries = gen.queries(100);
		const defaults = { ...tuned() };
		const exactTenth = async (q: string, filtered: boolean) => {
			const r = await db.query<{ d: number }>(
				`SELECT embedding <=> $1::vector AS d FROM emb_chunks WHERE collection_id = $2
				${filtered ? `AND metadata @> '{"bucket": 42}'` : ""} ORDER BY embedding <=> $1::vector LIMIT 10`,
				[vectorLiteral(embedLocal([q])[0]), c.id]
			);
			return Number(r.rows[9].d) + 1e-9;
		};
		// One at a time: a hundred exact scans at once would queue past the pool's connect timeout.
		const tenths: number[] = [];
		const filteredTenths: number[] = [];
		for (const q of queries) {
			tenths.push(await exactTenth(q, false));
			filteredTenths.push(await exactTenth(q, true));
		}
		const recallOf = async (filter?: object) => {
			let found = 0;
			let short = 0;
			for (let i = 0; i < queries.length; i++) {
				const r = await call("embeddings.search", {
					id: c.id,
					query: queries[i],
					mode: "vector",
					k: 10,
					filter
				});
				if (r.results.length < 10) short++;
				const tenth = filter ? filteredTenths[i] : tenths[i];
				found += r.results.filter((h: any) => 1 - h.scores.vector <= tenth).length;
			}
			return { recall: round(found / (queries.length * 10), 3), short };
		};
		const recall: Record<string, unknown> = {};
		tuned().exactSearchBelow = 0;
		for (const ef of EFS) {
			tuned().hnswEfSearch = ef;
			recall[`ef_search_${ef}`] = (await recallOf()).recall;
		}
		tuned().hnswEfSearch = defaults.hnswEfSearch;
		recall.filtered_1pct_index = await recallOf({ bucket: 42 });
		tuned().exactSearchBelow = defaults.exactSearchBelow;
		recall.filtered_1pct_default = await recallOf({ bucket: 42 });

		// Search throughput and latency per mode, each round beside the floor (the organization's embedding models: the
		// same broker, authorization and database path, one small indexed read, no search), as the machine may be
		// shared. (The collection's get counts its documents and chunks: at 100k it cost more than a search.)
		const search: Record<string, unknown> = {};
		const rounds: [string, string, Partial<Settings>][] = [
			["vector", "vector", {}],
			["fulltext", "fulltext", {}],
			["hybrid", "hybrid", {}],
			["fulltext_unbounded", "fulltext", { fulltextCandidates: 1_000_000 }],
			["hybrid_unbounded", "hybrid", { fulltextCandidates: 1_000_000 }]
		];
		const measure = async (f: (i: number) => Promise<unknown>) => {
			const latencies: number[] = [];
			let errors = 0;
			const end = performance.now() + DURATION_MS;
			let i = 0;
			await Promise.all(
				Array.from({ length: CALLERS }, async () => {
					while (performance.now() < end) {
						const s = performance.now();
						try {
							await f(i++);
							latencies.push(performance.now() - s);
						} catch {
							errors++;
						}
					}
				})
			);
			latencies.sort((a, b) => a - b);
			return {
				qps: round(latencies.length / (DURATION_MS / 1000)),
				p50_ms: round(pct(latencies, 50)),
				p95_ms: round(pct(latencies, 95)),
				errors
			};
		};
		for (const [name, mode, changes] of rounds) {
			Object.assign(tuned(), changes);
			// Three words of a query, ORed: some are common words, matching much of the collection.
			search[name] = await measure(i =>
				call("embeddings.search", {
					id: c.id,
					query: queries[i % queries.length].split(" ").slice(0, 3).join(" or "),
					mode,
					k: 10
				})
			);
			Object.assign(tuned(), defaults);
			search[`${name}_floor`] = await measure(() => call("embeddings-models.list", {}));
		}
		return {
			engine,
			corpus: CORPUS,
			chunks: n,
			dimensions: 384,
			ingest_chunks_per_s: round(n / ingestS),
			hnsw_build_s: round(buildS, 2),
			ef_search: defaults.hnswEfSearch,
			recall_at_10: recall,
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
				"recall@10": (r.recall_at_10 as Record<string, unknown>)[`ef_search_${r.ef_search}`],
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
