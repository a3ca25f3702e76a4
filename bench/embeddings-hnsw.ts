// HNSW settings explored on raw pgvector (no module in the way): BENCH_HNSW_CHUNKS vectors of 384 dimensions from the
// built-in embedder over a generated corpus (test/helpers/corpus.ts: "topics" and "random"), an index built per
// setting, then recall@10 against an exact scan and single-caller latency over 100 queries, per ef_search, unfiltered
// and with a 1% filter (iterative scans relaxed_order and strict_order). The floor is `SELECT 1` in the same run.
// Env: BENCH_HNSW_CHUNKS (100,000), BENCH_HNSW_CORPORA (topics,random), BENCH_HNSW_BUILDS ("16/64,32/128"; a trailing
// h: halfvec), BENCH_HNSW_EF (40,100,200,400,800). Writes bench/results/embeddings-hnsw.json.
import fs from "fs";
import os from "os";
import path from "path";
import pg from "pg";
import { createTestDatabase } from "../test/helpers/infra";
import { embedLocal } from "../lib/text/local-embedder";
import { vectorLiteral } from "../services/embeddings/store";
import { corpus, type CorpusKind } from "../test/helpers/corpus";

const N = Number(process.env.BENCH_HNSW_CHUNKS ?? 100_000);
const CORPORA = (process.env.BENCH_HNSW_CORPORA ?? "topics,random").split(",") as CorpusKind[];
const BUILDS = (process.env.BENCH_HNSW_BUILDS ?? "16/64,32/128").split(",");
const EFS = (process.env.BENCH_HNSW_EF ?? "40,100,200,400,800").split(",").map(Number);
const Q = 100;

const pct = (xs: number[], p: number) => {
	const s = [...xs].sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
	const t = performance.now();
	const r = await f();
	return [r, performance.now() - t];
}

async function main() {
	const results: unknown[] = [];
	for (const kind of CORPORA) {
		const db = await createTestDatabase();
		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		try {
			await c.query("CREATE EXTENSION IF NOT EXISTS vector");
			await c.query("CREATE TABLE t (id int PRIMARY KEY, bucket int NOT NULL, embedding vector NOT NULL)");
			const gen = corpus(kind, { size: N });
			for (let i = 0; i < N; i += 1000) {
				const texts = Array.from({ length: Math.min(1000, N - i) }, (_, j) => gen.documents(i + j));
				const vs = embedLocal(texts, 384).map(vectorLiteral);
				await c.query(
					"INSERT INTO t SELECT i, b, v::vector FROM unnest($1::int[], $2::int[], $3::text[]) AS x(i, b, v)",
					[texts.map((_, j) => i + j), texts.map((_, j) => gen.bucket(i + j)), vs]
				);
			}
			await c.query("VACUUM ANALYZE t");
			const queries = embedLocal(gen.queries(Q), 384).map(vectorLiteral);
			// Exact answers: the tenth distance, unfiltered and in bucket 42.
			await c.query("SET enable_indexscan = off");
			const tenth: number[] = [];
			const tenthF: number[] = [];
			const exactMs: number[] = [];
			for (const q of queries) {
				const [r, ms] = await timed(() =>
					c.query("SELECT embedding <=> $1::vector AS d FROM t ORDER BY 1 LIMIT 10", [q])
				);
				exactMs.push(ms);
				tenth.push(Number(r.rows[9].d) + 1e-9);
				const f = await c.query(
					"SELECT embedding <=> $1::vector AS d FROM t WHERE bucket = 42 ORDER BY 1 LIMIT 10",
					[q]
				);
				tenthF.push(Number(f.rows[9].d) + 1e-9);
			}
			await c.query("RESET enable_indexscan");
			const floorMs: number[] = [];
			for (let i = 0; i < Q; i++) floorMs.push((await timed(() => c.query("SELECT 1")))[1]);
			const base = {
				corpus: kind,
				chunks: N,
				exact_p50_ms: round(pct(exactMs, 50)),
				floor_p50_ms: round(pct(floorMs, 50), 2)
			};
			console.log(JSON.stringify(base));
			for (const b of BUILDS) {
				const [m, efc] = b.replace(/h$/, "").split("/").map(Number);
				const type = b.endsWith("h") ? "halfvec" : "vector";
				await c.query("DROP INDEX IF EXISTS t_hnsw");
				await c.query("SET maintenance_work_mem = '512MB'");
				const [, buildMs] = await timed(() =>
					c.query(
						`CREATE INDEX t_hnsw ON t USING hnsw ((embedding::${type}(384)) ${type}_cosine_ops)
						WITH (m = ${m}, ef_construction = ${efc})`
					)
				);
				const size = (await c.query("SELECT pg_relation_size('t_hnsw') AS s")).rows[0].s;
				const plan = await c.query(
					`EXPLAIN SELECT id FROM t WHERE bucket = 42 ORDER BY embedding::${type}(384) <=> $1::${type}(384) LIMIT 10`,
					[queries[0]]
				);
				const usesIndex = plan.rows.some(r => /t_hnsw/.test(Object.values(r)[0] as string));
				const sweep = [];
				for (const ef of EFS) {
					for (const mode of ["none", "relaxed_order", "strict_order"] as const) {
						await c.query(`SET hnsw.ef_search = ${ef}`);
						await c.query(`SET hnsw.iterative_scan = ${mode === "none" ? "off" : mode}`);
						let found = 0;
						let foundF = 0;
						let short = 0;
						const ms: number[] = [];
						const msF: number[] = [];
						for (let i = 0; i < Q; i++) {
							const order = `embedding::${type}(384) <=> $1::${type}(384)`;
							if (mode === "none") {
								const [r, t] = await timed(() =>
									c.query(`SELECT embedding <=> $1::vector AS d FROM t ORDER BY ${order} LIMIT 10`, [
										queries[i]
									])
								);
								ms.push(t);
								found += r.rows.filter(x => Number(x.d) <= tenth[i]).length;
							}
							const [f, tf] = await timed(() =>
								c.query(
									`SELECT * FROM (SELECT embedding <=> $1::vector AS d FROM t WHERE bucket = 42
									ORDER BY ${order} LIMIT 10) x ORDER BY d`,
									[queries[i]]
								)
							);
							msF.push(tf);
							if (f.rows.length < 10) short++;
							foundF += f.rows.filter(x => Number(x.d) <= tenthF[i]).length;
						}
						const line = {
							build: b,
							ef_search: ef,
							iterative: mode,
							...(mode === "none"
								? {
										recall: round(found / (Q * 10), 3),
										p50_ms: round(pct(ms, 50)),
										p95_ms: round(pct(ms, 95))
									}
								: {}),
							filtered_recall: round(foundF / (Q * 10), 3),
							filtered_short: short,
							filtered_p50_ms: round(pct(msF, 50)),
							filtered_p95_ms: round(pct(msF, 95))
						};
						console.log(JSON.stringify(line));
						sweep.push(line);
					}
				}
				results.push({
					...base,
					build: b,
					build_s: round(buildMs / 1000, 1),
					index_mb: round(Number(size) / 2 ** 20),
					filter_uses_index: usesIndex,
					load: os.loadavg()[0],
					sweep
				});
				console.log(
					JSON.stringify({
						build: b,
						build_s: round(buildMs / 1000, 1),
						index_mb: round(Number(size) / 2 ** 20),
						filter_uses_index: usesIndex,
						load: os.loadavg()
					})
				);
			}
		} finally {
			await c.end();
			await db.drop();
		}
	}
	fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
	fs.writeFileSync(
		path.join(__dirname, "results", "embeddings-hnsw.json"),
		JSON.stringify({ at: new Date().toISOString(), cpus: os.cpus().length, results }, null, "\t") + "\n"
	);
}

main().catch(err => {
	console.error(err);
	process.exit(1);
});
