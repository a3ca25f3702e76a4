// An authenticated REST read through the cluster (GET /api/auth/me: gateway → RabbitMQ → one of two auth replicas,
// Redis for rate limits and the cacher, PostgreSQL) against a bare pair (a bare moleculer-web route calling an action
// of another process over the same RabbitMQ tuning, bare-remote.ts), interleaved, with CPU µs per request per
// process, and the Redis commands and PostgreSQL table reads per request of the platform path.
//
// Env: REST_ROUNDS (3), BENCH_DURATION_MS, BENCH_CONCURRENCY (load.ts), REST_PROFILE_DIR (a directory: every
// platform process runs with --cpu-prof into it; summarize with bench/profile-summary.ts).
import crypto from "crypto";
import { spawn } from "child_process";
import pg from "pg";
import { createTestDatabase, REDIS_URL, AMQP_URL } from "../test/helpers/infra";
import { startAuthCluster } from "../test/helpers/auth-cluster";
import { DEFAULT_LOAD } from "./load";
import { runLoadWithCpu, RABBITMQ, POSTGRES } from "./cpu";
import { spawnChild, stopAll } from "./proc";
import { BENCH_SECRETS } from "./setup";

const ROUNDS = Number(process.env.REST_ROUNDS ?? 3);
const PROFILE_DIR = process.env.REST_PROFILE_DIR;

const get = (url: string, headers: Record<string, string>) => async () => {
	const r = await fetch(url, { headers });
	await r.arrayBuffer();
	if (r.status !== 200) throw new Error(`status ${r.status}`);
};

// Table reads (sequential and index scans) and statements (transactions: each query outside one is its own) so far.
async function tableReads(dbUrl: string): Promise<{ reads: number; statements: number }> {
	await new Promise(r => setTimeout(r, 1200));
	const c = new pg.Client({ connectionString: dbUrl });
	await c.connect();
	try {
		await c.query("SELECT pg_stat_clear_snapshot()");
		const { rows } = await c.query(
			"SELECT sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::int AS n FROM pg_stat_user_tables"
		);
		const x = await c.query(
			"SELECT xact_commit::int AS n FROM pg_stat_database WHERE datname = current_database()"
		);
		// This session's own snapshot query is one more.
		return { reads: rows[0].n, statements: x.rows[0].n };
	} finally {
		await c.end();
	}
}

// Redis commands naming this run's namespace while `n` sequential requests run (MONITOR; the Redis is shared).
async function redisCommands(namespace: string, n: number, call: () => Promise<void>) {
	const mon = spawn("redis-cli", ["-u", REDIS_URL, "monitor"], { stdio: ["ignore", "pipe", "ignore"] });
	let out = "";
	mon.stdout.on("data", d => (out += d.toString()));
	await new Promise(r => setTimeout(r, 300));
	for (let i = 0; i < n; i++) await call();
	await new Promise(r => setTimeout(r, 300));
	mon.kill();
	const lines = out.split("\n").filter(l => l.includes(namespace));
	const byCmd: Record<string, number> = {};
	for (const l of lines) {
		const cmd = /\] "(\w+)"/.exec(l)?.[1]?.toLowerCase() ?? "?";
		byCmd[cmd] = (byCmd[cmd] ?? 0) + 1 / n;
	}
	return { perRequest: lines.length / n, byCmd };
}

async function main() {
	const db = await createTestDatabase("cide_bench_rest");
	const namespace = `bench-rest-${crypto.randomBytes(3).toString("hex")}`;
	const profEnv: Record<string, string> = PROFILE_DIR
		? { NODE_OPTIONS: `--require ${__dirname}/cpu-prof-preload.cjs`, CPU_PROF_DIR: PROFILE_DIR }
		: {};
	const c = await startAuthCluster({
		namespace,
		databaseUrl: db.url,
		env: {
			LOG_LEVEL: "info",
			RATE_LIMIT_IP_PER_MINUTE: "100000000",
			RATE_LIMIT_USER_PER_MINUTE: "100000000",
			...profEnv
		}
	});
	const bareEnv = { ...BENCH_SECRETS, TRANSPORTER: AMQP_URL, NAMESPACE: `${namespace}-bare`, LOG_LEVEL: "warn" };
	const bareNode = spawnChild("bare-node", "bench/bare-remote.ts", { ...bareEnv, ROLE: "node" });
	const bareWeb = spawnChild("bare-web", "bench/bare-remote.ts", { ...bareEnv, ROLE: "web", PORT: "3992" });
	const rows: any[] = [];
	try {
		await Promise.all([bareNode.waitFor(/bare node up/), bareWeb.waitFor(/bare web up/)]);
		const platform = get(`${c.base}/api/auth/me`, c.headers);
		const bare = get("http://127.0.0.1:3992/api/me", {});
		await platform();
		const redis = await redisCommands(namespace, 200, platform);
		const r0 = await tableReads(db.url);
		for (let i = 0; i < 200; i++) await platform();
		const r1 = await tableReads(db.url);
		const pgPerRequest = `${((r1.reads - r0.reads) / 200).toFixed(2)}, statements ${((r1.statements - r0.statements) / 200).toFixed(2)}`;
		console.log(
			`per request: Redis commands ${redis.perRequest.toFixed(2)} ${JSON.stringify(redis.byCmd)}, PostgreSQL table reads ${pgPerRequest}`
		);
		const [gw, a1, a2] = [c.gateway, ...c.replicas].map(n => n.proc.pid!);
		for (let round = 1; round <= ROUNDS; round++) {
			const b = await runLoadWithCpu(
				bare,
				{ web: bareWeb.pid, node: bareNode.pid, rabbitmq: RABBITMQ },
				DEFAULT_LOAD
			);
			const p = await runLoadWithCpu(
				platform,
				{ gateway: gw, auth: a1, auth2: a2, rabbitmq: RABBITMQ, postgres: POSTGRES, redis: /redis-server/ },
				DEFAULT_LOAD
			);
			const authUs = (p.cpuUsPerRequest.auth ?? 0) + (p.cpuUsPerRequest.auth2 ?? 0);
			const row = { round, bare: b, platform: p, ratio: p.rps / b.rps, authUs };
			rows.push(row);
			console.log(
				`round ${round}: bare ${b.rps} req/s p50 ${b.p50} (web ${b.cpuUsPerRequest.web} µs, node ${b.cpuUsPerRequest.node} µs, rabbit ${b.cpuUsPerRequest.rabbitmq}) | ` +
					`platform ${p.rps} req/s p50 ${p.p50} errors ${p.errors} (gateway ${p.cpuUsPerRequest.gateway} µs, auth ${authUs} µs, rabbit ${p.cpuUsPerRequest.rabbitmq}, pg ${p.cpuUsPerRequest.postgres}, redis ${p.cpuUsPerRequest.redis}) | ratio ${row.ratio.toFixed(2)} | other load ${p.otherLoadCores} cores`
			);
		}
		const mean = (f: (r: any) => number) => Math.round(rows.reduce((s, r) => s + f(r), 0) / rows.length);
		console.log(
			`mean: ratio ${(rows.reduce((s, r) => s + r.ratio, 0) / rows.length).toFixed(2)}, gateway ${mean(r => r.platform.cpuUsPerRequest.gateway)} µs, auth ${mean(r => r.authUs)} µs, bare web ${mean(r => r.bare.cpuUsPerRequest.web)} µs, bare node ${mean(r => r.bare.cpuUsPerRequest.node)} µs`
		);
	} finally {
		// SIGTERM, so that --cpu-prof writes its profiles.
		await Promise.all([c.gateway, ...c.replicas].map(n => n.stop("SIGTERM")));
		await stopAll();
		await db.drop().catch(() => undefined);
	}
	process.exit(0);
}

main().catch(err => {
	console.error(err);
	process.exit(1);
});
