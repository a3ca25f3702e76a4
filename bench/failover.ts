// A replica's death under load: gateway + 2 auth replicas as processes (RabbitMQ, Redis, PostgreSQL), authenticated
// REST reads (GET /api/auth/teams/:id and /api/auth/me alternating) in an open loop at a fixed rate; part-way through,
// one replica gets SIGKILL (a crash) or SIGTERM (a deploy). Prints p50/p99/max latency and failed requests of the
// whole stream and of the requests started in the 2 s after the signal, how many took over a second, and when the
// gateway dropped the node from its registry. Writes bench/results/failover.json.
//
// Env: BENCH_FAILOVER_RATE (100 req/s), BENCH_FAILOVER_DURATION_MS (8000), BENCH_FAILOVER_AT_MS (2000: signal),
// BENCH_FAILOVER_RUNS (1 per signal), BENCH_FAILOVER_ONLY (kill,term), BENCH_ENV_<VAR>=… (to every node),
// BENCH_FAILOVER_SAMPLES=1 (every request's start, latency and error in the JSON, for diagnosis).
import fs from "fs";
import path from "path";
import crypto from "crypto";
import { performance } from "perf_hooks";
import { cleanRedis, createTestDatabase } from "../test/helpers/infra";
import { TEST_JWT_SECRET } from "../test/helpers/process";
import { authRead, openLoop, percentile, Sample, startAuthCluster } from "../test/helpers/auth-cluster";
import { benchEnv } from "./proc";

const PG_ADMIN = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const RATE = Number(process.env.BENCH_FAILOVER_RATE ?? 100);
const DURATION_MS = Number(process.env.BENCH_FAILOVER_DURATION_MS ?? 8000);
const AT_MS = Number(process.env.BENCH_FAILOVER_AT_MS ?? 2000);
const RUNS = Number(process.env.BENCH_FAILOVER_RUNS ?? 1);
const ONLY = (process.env.BENCH_FAILOVER_ONLY ?? "kill,term").split(",");

const round = (n: number) => (Number.isFinite(n) ? Math.round(n * 10) / 10 : null);

function stats(samples: Sample[]) {
	const ok = samples.filter(s => !s.error).map(s => s.ms);
	return {
		requests: samples.length,
		failed: samples.length - ok.length,
		p50: round(percentile(ok, 50)),
		p99: round(percentile(ok, 99)),
		max: round(Math.max(...ok)),
		over1s: ok.filter(ms => ms > 1000).length,
		firstError: samples.find(s => s.error)?.error
	};
}

async function scenario(signal: "SIGKILL" | "SIGTERM", dbUrl: string) {
	const namespace = `bench-failover-${crypto.randomBytes(3).toString("hex")}`;
	const c = await startAuthCluster({
		namespace,
		databaseUrl: dbUrl,
		env: { JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "info", ...benchEnv }
	});
	try {
		const read = authRead(c);
		// Warm-up at the same rate: JIT, connection pools, the gateway's identity cache.
		await openLoop({ rate: RATE, durationMs: 2000, request: read });
		const [victim] = c.replicas;
		let signalAt = 0;
		let droppedAt: number | null = null;
		const t0 = performance.now();
		const dropped = c.gateway
			.waitFor(new RegExp(`Node '${victim.nodeID}' disconnected`), DURATION_MS + 30_000)
			.then(() => (droppedAt = performance.now() - t0))
			.catch(() => undefined);
		const { samples, atResult } = await openLoop({
			rate: RATE,
			durationMs: DURATION_MS,
			request: read,
			atMs: AT_MS,
			at: async () => {
				signalAt = performance.now() - t0;
				return victim.stop(signal);
			}
		});
		// The node may be dropped after the stream ended: wait for it (bounded by the waitFor above).
		await dropped;
		const after = samples.filter(s => s.start >= signalAt && s.start < signalAt + 2000);
		return {
			signal,
			exitCode: atResult ?? null,
			all: stats(samples),
			next2s: stats(after),
			droppedAfterMs: droppedAt === null ? null : Math.round(droppedAt - signalAt),
			...(process.env.BENCH_FAILOVER_SAMPLES ? { signalAt, samples } : {})
		};
	} finally {
		await c.stop();
		await cleanRedis(namespace);
	}
}

async function main() {
	console.log(`Failover bench: ${RATE} req/s for ${DURATION_MS} ms, signal at ${AT_MS} ms, ${RUNS} run(s) each…`);
	const db = await createTestDatabase("cide_bench_failover", PG_ADMIN);
	const results: any[] = [];
	try {
		for (let run = 0; run < RUNS; run++)
			for (const signal of ["SIGKILL", "SIGTERM"] as const) {
				if (!ONLY.includes(signal === "SIGKILL" ? "kill" : "term")) continue;
				const r = await scenario(signal, db.url);
				results.push(r);
				const line = (label: string, s: ReturnType<typeof stats>) =>
					`  ${label.padEnd(14)} ${String(s.requests).padStart(5)} req  p50 ${s.p50} ms  p99 ${s.p99} ms  ` +
					`max ${s.max} ms  over 1 s ${s.over1s}  failed ${s.failed}` +
					(s.firstError ? ` (${s.firstError})` : "");
				const drop = `dropped by the gateway after ${r.droppedAfterMs} ms`;
				console.log(`${signal} of one of two auth replicas (exit ${r.exitCode}), ${drop}:`);
				console.log(line("whole stream", r.all));
				console.log(line("2 s after it", r.next2s));
			}
	} finally {
		await db.drop();
	}
	const file = path.resolve(__dirname, "results/failover.json");
	const run = { date: new Date().toISOString(), rate: RATE, durationMs: DURATION_MS, atMs: AT_MS, env: benchEnv };
	fs.writeFileSync(file, JSON.stringify({ ...run, results }, null, 2) + "\n");
	console.log(`Written ${path.relative(process.cwd(), file)}`);
}

main().then(
	() => process.exit(0),
	err => {
		console.error(err);
		process.exit(1);
	}
);
