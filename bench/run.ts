// `npm run bench`: throughput and latency of one DB-backed read (`auth-teams.get` on a real row, as a registered user)
// embedded, across processes over RabbitMQ (uncached and Redis-cached), against a bare Moleculer pair on the same
// RabbitMQ with the same transporter settings. Prints a table and writes bench/results/latest.json.
//
// Env: BENCH_CONCURRENCY (50), BENCH_WARMUP_MS (1000), BENCH_DURATION_MS (5000), BENCH_ONLY (comma list of
// scenario ids), BENCH_PG_URL, BENCH_AMQP_URL, BENCH_REDIS_URL (defaults: 127.0.0.1).
import fs from "fs";
import os from "os";
import path from "path";
import crypto from "crypto";
import pg from "pg";
import { ServiceBroker } from "moleculer";
import { loadConfig } from "../lib/config";
import { brokerOptions } from "../moleculer.config";
import { bareBrokerOptions } from "./bare";
import { DEFAULT_LOAD, LoadStats, peakRssMiB, resetPeakRss } from "./load";
import { CpuStats, POSTGRES, RABBITMQ, runLoadWithCpu } from "./cpu";
import { BENCH_SECRETS, prepareFixture, readTeam } from "./setup";
import { benchEnv, ROOT, spawnChild, stopAll } from "./proc";
import { cleanRedis, createTestDatabase } from "../test/helpers/infra";

const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const AMQP_URL = process.env.BENCH_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const DEADLINE_MS = 115_000;

const RUN = crypto.randomBytes(3).toString("hex");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "cide-bench-"));

interface ScenarioResult extends LoadStats, CpuStats {
	id: string;
	label: string;
	processes: { role: string; peakRssMiB: number | null }[];
	// PostgreSQL reads of the teams table per measured request (pg_stat_user_tables), where observable.
	dbReadsPerRequest?: number | null;
	ratioToBare?: number | null;
}

// ---------------------------------------------------------------------------------------------- infrastructure

// Reads of the teams table, from PostgreSQL's own statistics (flushed by backends within ~1 s).
async function teamReads(dbUrl: string): Promise<number> {
	const c = new pg.Client({ connectionString: dbUrl });
	await c.connect();
	try {
		await c.query("SELECT pg_stat_force_next_flush()").catch(() => undefined);
		await c.query("SELECT pg_stat_clear_snapshot()");
		const { rows } = await c.query(
			"SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS n FROM pg_stat_user_tables WHERE relname = 'teams'"
		);
		return Number(rows[0]?.n ?? 0);
	} finally {
		await c.end();
	}
}

async function settledTeamReads(dbUrl: string): Promise<number> {
	// Other backends flush their pending counters at most once a second while busy, and when idle.
	await new Promise(r => setTimeout(r, 1200));
	return teamReads(dbUrl);
}

const passThrough = { ...benchEnv };
if (process.env.BENCH_NO_PREPARE) passThrough.BENCH_NO_PREPARE = "1";
const nodeEnv = (extra: Record<string, string>) => ({
	...BENCH_SECRETS,
	LOG_LEVEL: "info",
	DATA_DIR: path.join(TMP, "data"),
	...extra,
	...passThrough
});

// -------------------------------------------------------------------------------------------------- scenarios

// (a) one embedded process; the load runs inside it.
async function embedded(
	id: string,
	label: string,
	env: Record<string, string>,
	dbUrl?: string
): Promise<ScenarioResult> {
	const before = dbUrl ? await teamReads(dbUrl) : undefined;
	const child = spawnChild(
		id,
		"bench/embedded-worker.ts",
		nodeEnv({ SERVICES: "auth", CACHER: "none", NODE_ID: `bench-${id}-${RUN}`, ...env })
	);
	try {
		const m = await child.waitFor(/BENCH_RESULT (.*)\n|BENCH_ERROR ([\s\S]*)/, 60_000);
		if (m[2]) throw new Error(`${id} failed: ${m[2]}`);
		const rss = peakRssMiB(child.pid);
		const stats = JSON.parse(m[1]);
		if (stats.cacher) throw new Error(`${id}: a ${stats.cacher} is active, reads would not reach the database`);
		delete stats.cacher;
		delete stats.db;
		const res: ScenarioResult = {
			id,
			label,
			...stats,
			processes: [{ role: "embedded node (caller + auth services)", peakRssMiB: rss }]
		};
		await child.stop();
		if (dbUrl && before !== undefined) res.dbReadsPerRequest = await readsPerRequest(dbUrl, before, res.requests);
		return res;
	} finally {
		await child.stop();
	}
}

async function readsPerRequest(dbUrl: string, before: number, requests: number) {
	if (!requests) return null;
	const after = await settledTeamReads(dbUrl);
	// The fixture's create + one check read, and warm-up, also read the table: only a lower bound matters here.
	return Math.round(((after - before) / requests) * 100) / 100;
}

async function platformCaller(namespace: string) {
	const config = loadConfig({
		...passThrough,
		TRANSPORTER: AMQP_URL,
		NAMESPACE: namespace,
		CACHER: "none",
		...BENCH_SECRETS,
		LOG_LEVEL: "warn",
		DATA_DIR: path.join(TMP, "data")
	});
	const broker = new ServiceBroker({ ...brokerOptions(config), nodeID: `bench-caller-${RUN}` });
	await broker.start();
	return broker;
}

// (b) and (c): the bench process as a platform node with no services → a SERVICES=auth node over RabbitMQ.
async function remote(id: string, label: string, dbUrl: string, cacher: string): Promise<ScenarioResult> {
	const namespace = `bench-${id}-${RUN}`;
	// BENCH_NO_PREPARE=1 (before/after of the adapter's prepared statements): the same node, findOne as before.
	const node = spawnChild(
		id,
		process.env.BENCH_NO_PREPARE ? "bench/variant-node.ts" : "lib/main.ts",
		nodeEnv({
			SERVICES: "auth",
			TRANSPORTER: AMQP_URL,
			NAMESPACE: namespace,
			NODE_ID: `auth-${id}-${RUN}`,
			DATABASE_URL: dbUrl,
			CACHER: cacher
		})
	);
	let broker: ServiceBroker | undefined;
	try {
		await node.waitFor(/Coder IDE node .* up/, 60_000);
		resetPeakRss("self");
		broker = await platformCaller(namespace);
		await broker.waitForServices(["auth", "auth-teams"], 20_000);
		const fixture = await prepareFixture(broker);
		const before = await teamReads(dbUrl);
		const stats = await runLoadWithCpu(readTeam(broker, fixture), {
			caller: "self",
			node: node.pid,
			rabbitmq: RABBITMQ,
			postgres: POSTGRES
		});
		const res: ScenarioResult = {
			id,
			label,
			...stats,
			processes: [
				{ role: "bench caller (platform broker, no services)", peakRssMiB: peakRssMiB("self") },
				{ role: "SERVICES=auth node", peakRssMiB: peakRssMiB(node.pid) }
			]
		};
		await broker.stop();
		broker = undefined;
		await node.stop();
		// Log lines the node wrote while serving (start-up and shutdown excluded roughly): per-request logging shows here.
		if (process.env.BENCH_SHOW_NODE_LOG)
			console.log(
				`--- ${id} node output (${node.output().split("\n").length} lines):\n${node.output().slice(-4000)}`
			);
		res.dbReadsPerRequest = await readsPerRequest(dbUrl, before, res.requests);
		return res;
	} finally {
		await broker?.stop().catch(() => undefined);
		await node.stop();
		if (cacher !== "none") await cleanRedis(`${namespace}-cache`, REDIS_URL);
	}
}

// (d) the baseline: bare broker with `echo` in a child process ← bare broker in the bench process.
async function barePair(id: string, label: string): Promise<ScenarioResult> {
	const namespace = `bench-${id}-${RUN}`;
	const env = { TRANSPORTER: AMQP_URL, NAMESPACE: namespace, ...BENCH_SECRETS, LOG_LEVEL: "warn" };
	const node = spawnChild(id, "bench/echo-node.ts", { ...env, NODE_ID: `echo-${RUN}` });
	let broker: ServiceBroker | undefined;
	try {
		await node.waitFor(/echo node .* up/, 30_000);
		resetPeakRss("self");
		broker = new ServiceBroker({ ...bareBrokerOptions(env), nodeID: `bench-bare-caller-${RUN}` });
		await broker.start();
		await broker.waitForServices(["echo"], 20_000);
		const params = { id: crypto.randomUUID() };
		const b = broker;
		const stats = await runLoadWithCpu(() => b.call("echo.echo", params), {
			caller: "self",
			node: node.pid,
			rabbitmq: RABBITMQ,
			postgres: POSTGRES
		});
		return {
			id,
			label,
			...stats,
			processes: [
				{ role: "bench caller (bare broker)", peakRssMiB: peakRssMiB("self") },
				{ role: "bare echo node", peakRssMiB: peakRssMiB(node.pid) }
			]
		};
	} finally {
		await broker?.stop().catch(() => undefined);
		await node.stop();
	}
}

// ----------------------------------------------------------------------------------------------------- output

function machine() {
	const cpu =
		/model name\s*:\s*(.*)/.exec(fs.readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? os.cpus()[0]?.model;
	return {
		nproc: os.availableParallelism?.() ?? os.cpus().length,
		cpu,
		memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
		node: process.version,
		os: `${os.type()} ${os.release()}`
	};
}

function formatTable(head: string[], rows: string[][], leftAligned: number[]) {
	const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)));
	const line = (cells: string[]) =>
		cells
			.map((c, i) => (leftAligned.includes(i) ? c.padEnd(widths[i]) : c.padStart(widths[i])))
			.join("  ")
			.trimEnd();
	return [line(head), widths.map(w => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

function table(results: ScenarioResult[]) {
	const head = ["scenario", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "× bare", "peak RSS MiB"];
	const rows = results.map(r => [
		`${r.id}  ${r.label}`,
		String(r.rps),
		String(r.p50),
		String(r.p90),
		String(r.p99),
		String(r.errors),
		r.ratioToBare == null ? "-" : r.ratioToBare.toFixed(2),
		r.processes.map(p => `${p.peakRssMiB ?? "?"} ${p.role.split(" (")[0]}`).join(", ")
	]);
	return formatTable(head, rows, [0, 7]);
}

// Where the work went: CPU time per request of each process (RabbitMQ and PostgreSQL: the whole server, so other
// load on the machine counts too), teams-table reads per request seen by PostgreSQL, and how busy the machine was.
function cpuTable(results: ScenarioResult[]) {
	const names = ["caller", "node", "rabbitmq", "postgres"];
	const head = ["scenario", ...names.map(n => `${n} µs`), "PG reads/req", "machine busy", "other load"];
	const rows = results.map(r => [
		r.id,
		...names.map(n => (r.cpuUsPerRequest[n] == null ? "-" : String(r.cpuUsPerRequest[n]))),
		r.dbReadsPerRequest == null ? "-" : String(r.dbReadsPerRequest),
		`${r.machineBusyPct}%`,
		`${r.otherLoadCores.toFixed(2)} cores`
	]);
	return formatTable(head, rows, [0]);
}

// ------------------------------------------------------------------------------------------------------- main

async function main() {
	const started = Date.now();
	const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(",") : undefined;
	const want = (id: string) => !only || only.includes(id);
	const m = machine();
	console.log(`Coder IDE bench: ${m.nproc} × ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}`);
	console.log(
		`auth-teams.get, ${DEFAULT_LOAD.concurrency} concurrent callers, ${DEFAULT_LOAD.warmupMs} ms warm-up + ${DEFAULT_LOAD.durationMs} ms measured per scenario`
	);
	console.log(
		"platform scenarios run as deployed (TRANSIT_KEY encryption, metrics, LOG_LEVEL=info); the bare pair is plain Moleculer\n"
	);

	const db = await createTestDatabase("cide_bench", PG_ADMIN_URL);
	dropDatabase = db.drop;
	const results: ScenarioResult[] = [];
	const step = async (id: string, fn: () => Promise<ScenarioResult>) => {
		if (!want(id)) return;
		const t = Date.now();
		const r = await fn();
		results.push(r);
		console.log(
			`  ${id}: ${r.rps} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.errors} errors${r.firstError ? ` (${r.firstError})` : ""}  [${((Date.now() - t) / 1000).toFixed(1)} s]`
		);
	};
	try {
		await step("d", () => barePair("d", "bare Moleculer pair, echo over RabbitMQ (baseline)"));
		await step("b", () => remote("b", "RabbitMQ → auth node, PostgreSQL, no cache", db.url, "none"));
		await step("c", () => remote("c", "RabbitMQ → auth node, Redis cache hits", db.url, REDIS_URL));
		await step("a-pg", () =>
			embedded("a-pg", "embedded, local calls, PostgreSQL, no cache", { DATABASE_URL: db.url }, db.url)
		);
		await step("a-pglite", () =>
			embedded("a-pglite", "embedded, local calls, PGlite, no cache", { DATA_DIR: path.join(TMP, "pglite") })
		);
	} finally {
		await stopAll();
		await db.drop().catch(err => console.error(`could not drop the bench database: ${err.message}`));
		fs.rmSync(TMP, { recursive: true, force: true });
	}

	const bare = results.find(r => r.id === "d");
	for (const r of results) r.ratioToBare = bare?.rps ? Math.round((r.rps / bare.rps) * 100) / 100 : null;
	const order = ["a-pglite", "a-pg", "b", "c", "d"];
	results.sort((x, y) => order.indexOf(x.id) - order.indexOf(y.id));

	console.log("\n" + table(results));
	console.log(
		"\nCPU time per request (µs; RabbitMQ and PostgreSQL are whole servers; embedded: node = the one process)"
	);
	console.log(cpuTable(results));
	const out = {
		generatedAt: new Date().toISOString(),
		machine: m,
		action: "auth-teams.get (DbMixin, tenant-scoped) on one real row, meta.auth of a registered owner",
		load: DEFAULT_LOAD,
		transporter: {
			type: "AMQP",
			prefetch: loadConfig({ ...BENCH_SECRETS, DATA_DIR: TMP }).transporterPrefetch,
			noDelay: true
		},
		notes: [
			"b and c: the caller is this process as a platform broker (moleculer.config.ts options, no services); packets are AES-256-GCM encrypted (TRANSIT_KEY), as every cluster must be",
			"d: bare Moleculer brokers with only the platform's transporter settings and serializer (no encryption, metrics, middlewares)",
			"cpuUsPerRequest: CPU time per measured request; rabbitmq and postgres are whole servers, so other users of them count too; otherLoadCores: CPU used meanwhile by processes not measured (a shared machine)"
		],
		...(process.env.BENCH_NO_PREPARE
			? { variant: "BENCH_NO_PREPARE: PgAdapter.findOne without prepared statements (before)" }
			: {}),
		scenarios: results.map(({ firstError, ...r }) => (firstError ? { ...r, firstError } : r)),
		wallSeconds: Math.round((Date.now() - started) / 100) / 10
	};
	const dir = path.join(ROOT, "bench/results");
	fs.mkdirSync(dir, { recursive: true });
	const file = process.env.BENCH_NO_PREPARE ? "before-prepared-statements.json" : "latest.json";
	fs.writeFileSync(path.join(dir, file), JSON.stringify(out, null, 2) + "\n");
	console.log(`\nwritten bench/results/${file} (${out.wallSeconds} s)`);
}

// Whatever ends the run early (deadline, Ctrl-C), nodes are stopped and the throwaway database dropped.
let dropDatabase: (() => Promise<void>) | undefined;
async function abort(reason: string, code: number) {
	console.error(reason);
	await stopAll();
	await dropDatabase?.().catch(() => undefined);
	fs.rmSync(TMP, { recursive: true, force: true });
	process.exit(code);
}
setTimeout(() => abort(`bench exceeded ${DEADLINE_MS / 1000} s; stopping`, 2), DEADLINE_MS).unref();
process.once("SIGINT", () => abort("interrupted", 130));
process.once("SIGTERM", () => abort("terminated", 143));

main().then(
	() => process.exit(0),
	async err => {
		console.error(err?.stack ?? err);
		await stopAll();
		process.exit(1);
	}
);
