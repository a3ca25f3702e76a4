// Memory under a long mixed load: does any process keep growing? Starts the cluster as compose runs it (one process
// per service over RabbitMQ, Redis, PostgreSQL; `embedded` too with BENCH_SOAK_MODES), records each process's idle
// RSS and heap after start, then sends mixed traffic for BENCH_SOAK_MINUTES (default 10): REST reads, /v1 chat
// completions against the fake upstream of ai.ts, prompt renders, knowledge search and article writes. Every
// BENCH_SOAK_SAMPLE_MS each process's VmRSS (/proc) and V8 heapUsed (its /metrics, moleculer's process metrics) are
// sampled. After the warm-up (the first BENCH_SOAK_WARMUP_FRACTION of the run) the rest is cut in thirds and, per
// process, the minimum of each third is compared (a minimum is what survives garbage collection, where a mean would
// follow the sawtooth of the heap): growth above BENCH_SOAK_MAX_GROWTH_MIB (RSS) or BENCH_SOAK_MAX_HEAP_GROWTH_MIB
// (heap) between the first and the last third is flagged, and the bench exits 1.
// Results: bench/results/soak.json (with every sample).
import fs from "fs";
import os from "os";
import path from "path";
import crypto from "crypto";
import { spawnChild, Child, ROOT } from "./proc";
import { api, configureOwner, type Owner } from "./ai-setup";
import { createTestDatabase } from "../test/helpers/infra";
import { deriveCredential } from "../lib/service-identity";

const PG_ADMIN = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const AMQP = "amqp://guest:guest@127.0.0.1:5672";
const REDIS = "redis://127.0.0.1:6379";
const MINUTES = Number(process.env.BENCH_SOAK_MINUTES ?? 10);
const SAMPLE_MS = Number(process.env.BENCH_SOAK_SAMPLE_MS ?? 5000);
const WARMUP_FRACTION = Number(process.env.BENCH_SOAK_WARMUP_FRACTION ?? 0.2);
const CONCURRENCY = Number(process.env.BENCH_SOAK_CONCURRENCY ?? 4);
const IDLE_MS = Number(process.env.BENCH_SOAK_IDLE_MS ?? 15_000);
const MAX_GROWTH_MIB = Number(process.env.BENCH_SOAK_MAX_GROWTH_MIB ?? 25);
const MAX_HEAP_GROWTH_MIB = Number(process.env.BENCH_SOAK_MAX_HEAP_GROWTH_MIB ?? 10);
const MODES = (process.env.BENCH_SOAK_MODES ?? "cluster").split(",");

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

function rssMiB(pid: number): number | null {
	try {
		const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
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

async function startCluster(): Promise<{ procs: Proc[]; base: string; cleanup: () => Promise<void> }> {
	const db = await createTestDatabase("cide_bench_soak", PG_ADMIN);
	const root = crypto.randomBytes(32).toString("hex");
	const env = {
		...BASE_ENV,
		TRANSPORTER: AMQP,
		CHANNELS_URL: AMQP,
		CACHER: REDIS,
		DATABASE_URL: db.url,
		NAMESPACE: `bench-soak-${crypto.randomBytes(3).toString("hex")}`
	};
	const procs: Proc[] = [];
	const gatewayPort = nextPort++;
	const start = (name: string, extra: Record<string, string>) => {
		const healthPort = nextPort++;
		const child = spawnChild(name, "lib/main.ts", { ...env, ...extra, HEALTH_PORT: String(healthPort) });
		procs.push({ name, child, healthPort });
		return child;
	};
	const cleanup = async () => {
		await Promise.all(procs.map(p => p.child.stop().catch(() => undefined)));
		await db.drop().catch(() => undefined);
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

async function startEmbedded(): Promise<{ procs: Proc[]; base: string; cleanup: () => Promise<void> }> {
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-bench-soak-"));
	const port = nextPort++;
	const healthPort = nextPort++;
	const child = spawnChild("embedded", "lib/main.ts", {
		...BASE_ENV,
		DATA_DIR: dataDir,
		PORT: String(port),
		HEALTH_PORT: String(healthPort)
	});
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

// The smallest value of each third of the samples after the warm-up.
function thirds(samples: Sample[], pick: (s: Sample) => number | null, warmupMs: number) {
	const values = samples.filter(s => s.t >= warmupMs).map(pick);
	const n = Math.floor(values.length / 3);
	if (n < 1) return null;
	const min = (xs: (number | null)[]) => {
		const ok = xs.filter((x): x is number => x != null);
		return ok.length ? Math.min(...ok) : null;
	};
	return [min(values.slice(0, n)), min(values.slice(n, 2 * n)), min(values.slice(values.length - n))];
}

async function soak(mode: string) {
	console.log(`\n${mode}: starting…`);
	const { procs, base, cleanup } = mode === "embedded" ? await startEmbedded() : await startCluster();
	const up = spawnChild("upstream", "bench/ai-upstream.ts", {});
	try {
		const upstreamUrl = (await up.waitFor(/upstream listening at (\S+)/, 60_000))[1];
		// Idle: every process up, nothing asked yet (the readiness polling of configure comes after).
		await new Promise(r => setTimeout(r, IDLE_MS));
		const idle: Record<string, { rss: number | null; heap: number | null }> = {};
		for (const p of procs) idle[p.name] = { rss: rssMiB(p.child.pid), heap: await heapMiB(p.healthPort) };
		console.log(`${mode}: idle RSS / heapUsed MiB after start`);
		for (const [name, v] of Object.entries(idle)) console.log(`  ${name.padEnd(14)} ${v.rss} / ${v.heap}`);

		const owner = await configureOwner(base, upstreamUrl);
		const { ops, skipped } = await trafficOps(base, owner);
		for (const s of skipped) console.log(`${mode}: left out ${s}`);
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
			console.log(`${mode}: ${Math.round((Date.now() - started) / 1000)} s, ${done} requests`);
		}, 60_000);
		await Promise.all(Array.from({ length: CONCURRENCY }, worker));
		clearInterval(sampler);
		clearInterval(progress);

		const warmupMs = durationMs * WARMUP_FRACTION;
		const growth: Record<string, any> = {};
		const flags: string[] = [];
		console.log(`${mode}: requests per kind (ok / errors)`);
		for (const [k, c] of Object.entries(counts))
			console.log(`  ${k.padEnd(16)} ${c.ok} / ${c.errors}${c.lastError ? `  last error: ${c.lastError}` : ""}`);
		console.log(
			`${mode}: after ${Math.round(warmupMs / 1000)} s of warm-up, the minimum of each third (MiB): RSS first → middle → last | heapUsed first → middle → last`
		);
		for (const p of procs) {
			const rss = thirds(samples[p.name], s => s.rss, warmupMs);
			const heap = thirds(samples[p.name], s => s.heap, warmupMs);
			const peak = Math.max(...samples[p.name].map(s => s.rss));
			const d = (v: (number | null)[] | null) => (v && v[0] != null && v[2] != null ? v[2] - v[0] : null);
			const rssGrowth = d(rss);
			const heapGrowth = d(heap);
			const flagged =
				(rssGrowth != null && rssGrowth > MAX_GROWTH_MIB) ||
				(heapGrowth != null && heapGrowth > MAX_HEAP_GROWTH_MIB);
			if (flagged) flags.push(p.name);
			growth[p.name] = { rss, heap, rssGrowth, heapGrowth, peakRss: peak, flagged };
			console.log(
				`  ${p.name.padEnd(14)} ${rss?.join(" → ")} | ${heap?.join(" → ")}   peak RSS ${peak}${flagged ? "   ← GROWS" : ""}`
			);
		}
		return { idle, counts, skipped, growth, flags, samples, durationMs, warmupMs };
	} finally {
		await up.stop().catch(() => undefined);
		await cleanup();
	}
}

async function main() {
	console.log(
		`Memory soak: ${MINUTES} min of mixed traffic per mode (${MODES.join(", ")}), ${CONCURRENCY} in flight, ` +
			`samples every ${SAMPLE_MS / 1000} s; flags growth over ${MAX_GROWTH_MIB} MiB RSS or ${MAX_HEAP_GROWTH_MIB} MiB heap`
	);
	const results: any = { at: new Date().toISOString(), minutes: MINUTES, loadavg: os.loadavg(), modes: {} };
	for (const mode of MODES) results.modes[mode] = await soak(mode);
	results.loadavgEnd = os.loadavg();
	fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
	fs.writeFileSync(path.join(__dirname, "results", "soak.json"), JSON.stringify(results, null, 1) + "\n");
	const flagged = MODES.flatMap(m => results.modes[m].flags.map((f: string) => `${m}/${f}`));
	if (flagged.length) {
		console.log(`\nMemory keeps growing after warm-up in: ${flagged.join(", ")}`);
		process.exit(1);
	}
	console.log("\nNo process grew beyond the thresholds after warm-up.");
}

main().catch(err => {
	console.error(err);
	process.exit(1);
});
