// Memory under a long mixed load: does any process keep growing? Starts the cluster as compose runs it (one process
// per service over RabbitMQ, Redis, PostgreSQL; `embedded` too with BENCH_SOAK_MODES), records each process's idle
// RSS, peak RSS and heap BENCH_SOAK_IDLE_MS after all are up, then sends mixed traffic for BENCH_SOAK_MINUTES
// (default 10; 0: the idle figures only): REST reads, /v1 chat completions against the fake upstream of ai.ts, prompt
// renders, knowledge search and article writes. Every BENCH_SOAK_SAMPLE_MS each process's VmRSS (/proc) and V8
// heapUsed (its /metrics, moleculer's process metrics) are sampled.
// The processes run as the image and `npm start` run them (its command line: the compiled dist/lib/main.js, built
// first when the sources changed, with its node flags); BENCH_SOAK_RUN=tsx runs the sources through tsx as
// `npm run dev` does, `dist,tsx` both, one after the other.
// After the warm-up (the first BENCH_SOAK_WARMUP_FRACTION of the run) the samples are cut in thirds and, per process,
// the minimum of each third is compared (a minimum is what survives garbage collection, where a mean would follow the
// sawtooth of the heap). A process grows when its minima rose from the first to the last third by more than
// BENCH_SOAK_MAX_GROWTH_MIB (RSS) or BENCH_SOAK_MAX_HEAP_GROWTH_MIB (heap) AND still rise over the last half of the
// run: the slope of the minima of its sixths there, carried over the whole span after the warm-up, exceeds the same
// limit. Memory that rose while warming up and then stayed flat (allocator arenas, compiled code) is reported, not
// flagged. A flagged process makes the bench exit 1.
// Results: bench/results/soak.json (with every sample). BENCH_SOAK_CHECK=<results file> checks a saved run again.
import fs from "fs";
import os from "os";
import path from "path";
import crypto from "crypto";
import { spawnChild, Child, ROOT, npmStart } from "./proc";
import { buildIfStale } from "../scripts/build-server";
import { api, configureOwner, type Owner } from "./ai-setup";
import { createTestDatabase } from "../test/helpers/infra";
import { deleteRabbitObjects } from "../test/helpers/rabbit";
import { deriveCredential } from "../lib/service-identity";

const PG_ADMIN = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const AMQP = "amqp://guest:guest@127.0.0.1:5672";
const REDIS = "redis://127.0.0.1:6379";
const MINUTES = Number(process.env.BENCH_SOAK_MINUTES ?? 10);
const SAMPLE_MS = Number(process.env.BENCH_SOAK_SAMPLE_MS ?? 5000);
const WARMUP_FRACTION = Number(process.env.BENCH_SOAK_WARMUP_FRACTION ?? 0.2);
const CONCURRENCY = Number(process.env.BENCH_SOAK_CONCURRENCY ?? 4);
const IDLE_MS = Number(process.env.BENCH_SOAK_IDLE_MS ?? 30_000);
const MAX_GROWTH_MIB = Number(process.env.BENCH_SOAK_MAX_GROWTH_MIB ?? 25);
const MAX_HEAP_GROWTH_MIB = Number(process.env.BENCH_SOAK_MAX_HEAP_GROWTH_MIB ?? 10);
const MODES = (process.env.BENCH_SOAK_MODES ?? "cluster").split(",");
const RUNS = (process.env.BENCH_SOAK_RUN ?? "dist").split(",") as Run[];
const MAIN: Record<Run, string> = { dist: npmStart.main, tsx: "lib/main.ts" };
const NODE_ARGS: Record<Run, string[]> = { dist: npmStart.nodeArgs, tsx: [] };

type Run = "dist" | "tsx";

const BASE_ENV = {
	JWT_SECRET: crypto.randomBytes(24).toString("hex"),
	TRANSIT_KEY: crypto.randomBytes(24).toString("hex"),
	LOG_LEVEL: "info", // the "up" line the bench waits for is an info line
	RATE_LIMIT_IP_PER_MINUTE: "100000000",
	RATE_LIMIT_USER_PER_MINUTE: "100000000",
	AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1"
};

interface Proc {
	name: string;
	child: Child;
	healthPort: number;
}

interface Sample {
	t: number; // ms since the traffic started
	rss: number; // MiB
	heap: number | null; // MiB
}

const MiB = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

// VmRSS (now) or VmHWM (the peak so far) of a process, MiB.
function rssMiB(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number | null {
	try {
		const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
		return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : null;
	} catch {
		return null;
	}
}

// V8's heapUsed as the node's own metrics report it (sampled by moleculer every few seconds).
async function heapMiB(port: number): Promise<number | null> {
	try {
		const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
		const m = /^process_memory_heap_size_used\{[^}]*\} (\S+)/m.exec(text);
		return m ? MiB(Number(m[1])) : null;
	} catch {
		return null;
	}
}

// The services of the cluster and the credentials each process holds, as docker-compose.yml gives them.
function composeServices(): { name: string; credentials: string[] }[] {
	const text = fs.readFileSync(path.join(ROOT, "docker-compose.yml"), "utf8");
	const out: { name: string; credentials: string[] }[] = [];
	for (const block of text.split(/\n {2}(?=[a-z][\w-]*:\n)/)) {
		const services = /\n\s+SERVICES: (\S+)/.exec(block);
		if (!services) continue;
		const creds = /\n\s+SERVICE_CREDENTIALS: "([^"]+)"/.exec(block);
		out.push({
			name: services[1],
			credentials: creds ? [...creds[1].matchAll(/([\w-]+):\$\{/g)].map(m => m[1]) : []
		});
	}
	return out;
}

let nextPort = 4400 + Math.floor(Math.random() * 400);

async function startCluster(run: Run): Promise<{ procs: Proc[]; base: string; cleanup: () => Promise<void> }> {
	const db = await createTestDatabase("cide_bench_soak", PG_ADMIN);
	const root = crypto.randomBytes(32).toString("hex");
	const namespace = `bench-soak-${crypto.randomBytes(3).toString("hex")}`;
	const env = {
		...BASE_ENV,
		TRANSPORTER: AMQP,
		CHANNELS_URL: AMQP,
		CACHER: REDIS,
		DATABASE_URL: db.url,
		NAMESPACE: namespace
	};
	const procs: Proc[] = [];
	const gatewayPort = nextPort++;
	const start = (name: string, extra: Record<string, string>) => {
		const healthPort = nextPort++;
		const child = spawnChild(
			name,
			MAIN[run],
			{ ...env, ...extra, HEALTH_PORT: String(healthPort) },
			NODE_ARGS[run]
		);
		procs.push({ name, child, healthPort });
		return child;
	};
	const cleanup = async () => {
		await Promise.all(procs.map(p => p.child.stop().catch(() => undefined)));
		await db.drop().catch(() => undefined);
		// Its queues and exchanges too: RabbitMQ keeps files open for every queue left behind.
		await deleteRabbitObjects([namespace]).catch(() => undefined);
	};
	try {
		const services = composeServices();
		// auth first: it applies the migrations every other node waits for.
		const ordered = [...services.filter(s => s.name === "auth"), ...services.filter(s => s.name !== "auth")];
		for (const s of ordered) {
			const extra: Record<string, string> = { SERVICES: s.name };
			if (s.name === "secrets") Object.assign(extra, { MASTER_KEY: crypto.randomBytes(32).toString("base64") });
			if (s.name === "secrets") extra.SERVICE_IDENTITY_KEY = root;
			if (s.credentials.length)
				extra.SERVICE_CREDENTIALS = s.credentials.map(c => `${c}:${deriveCredential(root, c)}`).join(",");
			if (s.name === "gateway") extra.PORT = String(gatewayPort);
			const child = start(s.name, extra);
			if (s.name === "auth") await child.waitFor(/Coder IDE node .* up/, 120_000);
		}
		await Promise.all(procs.map(p => p.child.waitFor(/Coder IDE node .* up/, 180_000)));
		return { procs, base: `http://127.0.0.1:${gatewayPort}`, cleanup };
	} catch (err) {
		await cleanup();
		throw err;
	}
}

async function startEmbedded(run: Run): Promise<{ procs: Proc[]; base: string; cleanup: () => Promise<void> }> {
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-bench-soak-"));
	const port = nextPort++;
	const healthPort = nextPort++;
	const child = spawnChild(
		"embedded",
		MAIN[run],
		{
			...BASE_ENV,
			DATA_DIR: dataDir,
			PORT: String(port),
			HEALTH_PORT: String(healthPort)
		},
		NODE_ARGS[run]
	);
	const cleanup = async () => {
		await child.stop().catch(() => undefined);
		fs.rmSync(dataDir, { recursive: true, force: true });
	};
	try {
		await child.waitFor(/Coder IDE node .* up/, 180_000);
	} catch (err) {
		await cleanup();
		throw err;
	}
	return { procs: [{ name: "embedded", child, healthPort }], base: `http://127.0.0.1:${port}`, cleanup };
}

type Op = () => Promise<unknown>;

// The traffic: each kind set up once; a kind whose set-up fails is left out (and said so) rather than counted as
// errors all run long.
async function trafficOps(base: string, owner: Owner): Promise<{ ops: Record<string, Op>; skipped: string[] }> {
	const { key, token, org } = owner;
	const call = (method: string, p: string, body?: unknown) => () => api(base, method, p, token, org, body);
	const ops: Record<string, Op> = {
		me: call("GET", "/api/auth/me"),
		models: call("GET", "/api/ai/models"),
		completion: async () => {
			const r = await fetch(`${base}/v1/chat/completions`, {
				method: "POST",
				headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
				body: JSON.stringify({ model: "bench-model", messages: [{ role: "user", content: "Say hello." }] })
			});
			const body = await r.text();
			if (r.status !== 200) throw new Error(`/v1/chat/completions: ${r.status} ${body.slice(0, 200)}`);
		}
	};
	const skipped: string[] = [];
	try {
		const name = `soak-${crypto.randomBytes(3).toString("hex")}`;
		await api(base, "POST", "/api/prompts", token, org, {
			name,
			messages: [
				{ role: "system", content: "You answer briefly." },
				{ role: "user", content: "Say hello." }
			],
			label: "production"
		});
		ops.promptRender = call("POST", "/api/prompts/render", { name, label: "production" });
		ops.promptList = call("GET", "/api/prompts");
	} catch (err: any) {
		skipped.push(`prompts (${err.message.slice(0, 200)})`);
	}
	try {
		const category = await api(base, "POST", "/api/knowledge/categories", token, org, { name: "Soak" });
		let n = 0;
		const article = () =>
			api(base, "POST", "/api/knowledge/articles", token, org, {
				category_id: category.id,
				title: `Soak article ${++n}`,
				body: `How to rotate the deploy key number ${n}: open the settings, generate a new key, revoke the old.`,
				status: "published"
			});
		await article();
		ops.knowledgeSearch = call("POST", "/api/knowledge/search", { query: "rotate the deploy key", k: 5 });
		// Writes are rarer than reads: one article per 20 rounds.
		let round = 0;
		ops.knowledgeWrite = () => (++round % 20 === 0 ? article() : Promise.resolve());
	} catch (err: any) {
		skipped.push(`knowledge (${err.message.slice(0, 200)})`);
	}
	return { ops, skipped };
}

interface Growth {
	thirds: (number | null)[]; // the minimum of each third after the warm-up, MiB
	growth: number | null; // last third's minimum - first third's, MiB
	recent: number | null; // the slope over the last half, carried over the span after the warm-up, MiB
	flagged: boolean;
}

const minOf = (xs: (number | null)[]) => {
	const ok = xs.filter((x): x is number => x != null);
	return ok.length ? Math.min(...ok) : null;
};

// Whether a series keeps growing after the warm-up (see the top of this file): its minima rose by more than `limit`
// from the first to the last third, and the minima of the sixths of the last half still rise at a rate that would
// add more than `limit` over the span after the warm-up. A plateau reached early passes; a steady leak does not.
export function growthOf(
	samples: Sample[],
	pick: (s: Sample) => number | null,
	warmupMs: number,
	limit: number
): Growth {
	const after = samples.filter(s => s.t >= warmupMs && pick(s) != null);
	const none = { thirds: [], growth: null, recent: null, flagged: false };
	if (after.length < 6) return none;
	const part = (i: number, k: number) =>
		after.slice(Math.floor((i * after.length) / k), Math.floor(((i + 1) * after.length) / k));
	const thirds = [0, 1, 2].map(i => minOf(part(i, 3).map(pick)));
	const growth = thirds[0] != null && thirds[2] != null ? thirds[2] - thirds[0] : null;
	// Least-squares slope (MiB per ms) through the minimum of each of the last three sixths, at their mean times.
	const points = [3, 4, 5].map(i => {
		const p = part(i, 6);
		return { t: p.reduce((a, s) => a + s.t, 0) / p.length, y: minOf(p.map(pick))! };
	});
	const mt = points.reduce((a, p) => a + p.t, 0) / points.length;
	const my = points.reduce((a, p) => a + p.y, 0) / points.length;
	const slope =
		points.reduce((a, p) => a + (p.t - mt) * (p.y - my), 0) / points.reduce((a, p) => a + (p.t - mt) ** 2, 0);
	const span = after[after.length - 1].t - after[0].t;
	const recent = Math.round(slope * span * 10) / 10;
	return { thirds, growth, recent, flagged: growth != null && growth > limit && recent > limit };
}

interface ModeResult {
	idle: Record<string, { rss: number | null; peak: number | null; heap: number | null }>;
	samples: Record<string, Sample[]>;
	warmupMs: number;
	[more: string]: unknown;
}

// Per process: its growth, printed, and the names of the flagged ones.
function checkGrowth(label: string, r: Pick<ModeResult, "samples" | "warmupMs">) {
	const growth: Record<string, { rss: Growth; heap: Growth; peakRss: number; flagged: boolean }> = {};
	const flags: string[] = [];
	console.log(
		`${label}: after ${Math.round(r.warmupMs / 1000)} s of warm-up, the minimum of each third (MiB) and the rise ` +
			"over the last half carried over the run: RSS | heapUsed"
	);
	const show = (g: Growth) =>
		`${g.thirds.join(" → ")} (last half: ${g.recent != null && g.recent > 0 ? "+" : ""}${g.recent})`;
	for (const [name, samples] of Object.entries(r.samples)) {
		const rss = growthOf(samples, s => s.rss, r.warmupMs, MAX_GROWTH_MIB);
		const heap = growthOf(samples, s => s.heap, r.warmupMs, MAX_HEAP_GROWTH_MIB);
		const peakRss = Math.max(...samples.map(s => s.rss));
		const flagged = rss.flagged || heap.flagged;
		const plateau = !flagged && ((rss.growth ?? 0) > MAX_GROWTH_MIB || (heap.growth ?? 0) > MAX_HEAP_GROWTH_MIB);
		if (flagged) flags.push(name);
		growth[name] = { rss, heap, peakRss, flagged };
		console.log(
			`  ${name.padEnd(14)} ${show(rss)} | ${show(heap)}   peak RSS ${peakRss}` +
				(flagged ? "   ← GROWS" : plateau ? "   (rose, then flat)" : "")
		);
	}
	return { growth, flags };
}

async function soak(mode: string, run: Run) {
	const label = RUNS.length > 1 ? `${mode} (${run})` : mode;
	console.log(`\n${label}: starting…`);
	const { procs, base, cleanup } = mode === "embedded" ? await startEmbedded(run) : await startCluster(run);
	const up = MINUTES > 0 ? spawnChild("upstream", "bench/ai-upstream.ts", {}) : undefined;
	try {
		// Idle: every process up, nothing asked yet (the readiness polling of configure comes after).
		await new Promise(r => setTimeout(r, IDLE_MS));
		const idle: ModeResult["idle"] = {};
		for (const p of procs)
			idle[p.name] = {
				rss: rssMiB(p.child.pid),
				peak: rssMiB(p.child.pid, "VmHWM"),
				heap: await heapMiB(p.healthPort)
			};
		console.log(`${label}: ${IDLE_MS / 1000} s after all were up, RSS / peak RSS / heapUsed MiB`);
		for (const [name, v] of Object.entries(idle))
			console.log(`  ${name.padEnd(14)} ${v.rss} / ${v.peak} / ${v.heap}`);
		const rss = Object.values(idle).map(v => v.rss ?? 0);
		console.log(
			`  ${"largest".padEnd(14)} ${Math.max(...rss)}   sum ${Math.round(rss.reduce((a, b) => a + b, 0))}`
		);
		if (!up) return { run, idle, samples: {}, warmupMs: 0, growth: {}, flags: [] };

		const upstreamUrl = (await up.waitFor(/upstream listening at (\S+)/, 60_000))[1];
		const owner = await configureOwner(base, upstreamUrl);
		const { ops, skipped } = await trafficOps(base, owner);
		for (const s of skipped) console.log(`${label}: left out ${s}`);
		const kinds = Object.keys(ops);
		const counts: Record<string, { ok: number; errors: number; lastError?: string }> = Object.fromEntries(
			kinds.map(k => [k, { ok: 0, errors: 0 }])
		);
		const samples: Record<string, Sample[]> = Object.fromEntries(procs.map(p => [p.name, []]));
		const durationMs = MINUTES * 60_000;
		const started = Date.now();
		const sampler = setInterval(async () => {
			const t = Date.now() - started;
			for (const p of procs)
				samples[p.name].push({ t, rss: rssMiB(p.child.pid) ?? 0, heap: await heapMiB(p.healthPort) });
		}, SAMPLE_MS);
		let turn = 0;
		const worker = async () => {
			while (Date.now() - started < durationMs) {
				const kind = kinds[turn++ % kinds.length];
				try {
					await ops[kind]();
					counts[kind].ok++;
				} catch (err: any) {
					counts[kind].errors++;
					counts[kind].lastError = err.message.slice(0, 300);
				}
			}
		};
		const progress = setInterval(() => {
			const done = Object.values(counts).reduce((a, c) => a + c.ok, 0);
			console.log(`${label}: ${Math.round((Date.now() - started) / 1000)} s, ${done} requests`);
		}, 60_000);
		await Promise.all(Array.from({ length: CONCURRENCY }, worker));
		clearInterval(sampler);
		clearInterval(progress);

		const warmupMs = durationMs * WARMUP_FRACTION;
		console.log(`${label}: requests per kind (ok / errors)`);
		for (const [k, c] of Object.entries(counts))
			console.log(`  ${k.padEnd(16)} ${c.ok} / ${c.errors}${c.lastError ? `  last error: ${c.lastError}` : ""}`);
		const { growth, flags } = checkGrowth(label, { samples, warmupMs });
		return { run, idle, counts, skipped, growth, flags, samples, durationMs, warmupMs };
	} finally {
		await up?.stop().catch(() => undefined);
		await cleanup();
	}
}

async function main() {
	const check = process.env.BENCH_SOAK_CHECK;
	if (check) {
		const saved = JSON.parse(fs.readFileSync(check, "utf8"));
		const flagged = Object.entries(saved.modes as Record<string, ModeResult>).flatMap(([mode, r]) =>
			checkGrowth(mode, r).flags.map(f => `${mode}/${f}`)
		);
		if (flagged.length) console.log(`\nMemory keeps growing after warm-up in: ${flagged.join(", ")}`);
		process.exit(flagged.length ? 1 : 0);
	}
	console.log(
		MINUTES > 0
			? `Memory soak: ${MINUTES} min of mixed traffic per mode (${MODES.join(", ")}), ${CONCURRENCY} in flight, ` +
					`samples every ${SAMPLE_MS / 1000} s; flags growth over ${MAX_GROWTH_MIB} MiB RSS or ${MAX_HEAP_GROWTH_MIB} MiB heap`
			: `Idle memory of each process (${MODES.join(", ")}; run as ${RUNS.join(", ")})`
	);
	if (RUNS.includes("dist")) buildIfStale();
	const results: any = { at: new Date().toISOString(), minutes: MINUTES, loadavg: os.loadavg(), modes: {} };
	for (const mode of MODES)
		for (const run of RUNS) results.modes[RUNS.length > 1 ? `${mode}-${run}` : mode] = await soak(mode, run);
	results.loadavgEnd = os.loadavg();
	fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
	const file = MINUTES > 0 ? "soak.json" : "idle-memory.json";
	fs.writeFileSync(path.join(__dirname, "results", file), JSON.stringify(results, null, 1) + "\n");
	const flagged = Object.entries(results.modes).flatMap(([m, r]: [string, any]) =>
		r.flags.map((f: string) => `${m}/${f}`)
	);
	if (flagged.length) {
		console.log(`\nMemory keeps growing after warm-up in: ${flagged.join(", ")}`);
		process.exit(1);
	}
	if (MINUTES > 0) console.log("\nNo process kept growing after warm-up.");
}

if (require.main === module)
	main().catch(err => {
		console.error(err);
		process.exit(1);
	});
