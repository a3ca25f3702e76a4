// The AI gateway's overhead: the same chat request, with the official openai SDK, sent straight to an
// OpenAI-compatible upstream on 127.0.0.1 and through the platform's /v1/chat/completions, side by side, at fixed
// offered rates (open loop). Embedded (one process, PGlite) and cluster (gateway, AI, auth+secrets over RabbitMQ,
// PostgreSQL, Redis). First one request at a time (the path's own cost, no queueing), then at fixed offered rates;
// also the highest offered rate the platform sustains with no errors, and a closed loop at saturation (CPU per request).
// Portkey's open-source gateway (npm @portkey-ai/gateway), installed on demand into bench/.cache/portkey, is measured
// the same way against the same upstream.
// BENCH_AI_MODES, BENCH_AI_RATES, BENCH_AI_SUSTAIN, BENCH_AI_PAIRS, BENCH_AI_DURATION_MS, BENCH_AI_SATURATION_MS,
// BENCH_AI_CONNECTIONS narrow a run.
import fs from "fs";
import os from "os";
import path from "path";
import crypto from "crypto";
import { execFileSync } from "child_process";
import OpenAI from "openai";
import Redis from "ioredis";
import { spawnChild, Child, npmStart, benchEnv } from "./proc";
import { buildIfStale } from "../scripts/build-server";
import { cpuMeter, cpuTicks, POSTGRES, RABBITMQ } from "./cpu";
import { peakRssMiB } from "./load";
import { createTestDatabase } from "../test/helpers/infra";
import { deleteRabbitObjects } from "../test/helpers/rabbit";
import { deriveCredential } from "../lib/service-identity";
import { configure } from "./ai-setup";

const PG_ADMIN = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const AMQP = "amqp://guest:guest@127.0.0.1:5672";
const REDIS = "redis://127.0.0.1:6379";
const DURATION_MS = Number(process.env.BENCH_AI_DURATION_MS ?? 4000);
const RATES = (process.env.BENCH_AI_RATES ?? "100,500").split(",").map(Number);
const PAIRS = Number(process.env.BENCH_AI_PAIRS ?? 2000);
const STREAM_PAIRS = Number(process.env.BENCH_AI_STREAM_PAIRS ?? 500);
const MODES = (process.env.BENCH_AI_MODES ?? "floor,portkey,embedded,cluster").split(",");
const SATURATION_MS = Number(process.env.BENCH_AI_SATURATION_MS ?? 5000);
const CONNECTIONS = Number(process.env.BENCH_AI_CONNECTIONS ?? 32);
const PORTKEY_VERSION = "1.15.2";
// A platform node's start-up: the embedded database's first creation alone takes a minute or more on a busy host.
const START_MS = 240_000;
const SUSTAIN_STEPS = (process.env.BENCH_AI_SUSTAIN ?? "250,500,750,1000,1500,2000").split(",").map(Number);
const BASE_ENV = {
	JWT_SECRET: crypto.randomBytes(24).toString("hex"),
	TRANSIT_KEY: crypto.randomBytes(24).toString("hex"),
	LOG_LEVEL: "info",
	RATE_LIMIT_IP_PER_MINUTE: "100000000",
	RATE_LIMIT_USER_PER_MINUTE: "100000000",
	// The fake upstream listens on loopback, which AI providers may not reach unless allowed.
	AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
	...benchEnv
};

interface Sample {
	ok: number;
	errors: number;
	latencies: number[];
	achievedRps: number;
}

const pct = (sorted: number[], p: number) =>
	sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;

// Open loop: requests start on a fixed schedule whatever the answers do, so a slow server shows as latency.
async function openLoop(rate: number, durationMs: number, send: () => Promise<unknown>): Promise<Sample> {
	const latencies: number[] = [];
	let errors = 0;
	const pending: Promise<void>[] = [];
	const started = performance.now();
	const total = Math.round((rate * durationMs) / 1000);
	for (let i = 0; i < total; i++) {
		const due = started + (i * 1000) / rate;
		const wait = due - performance.now();
		if (wait > 1) await new Promise(r => setTimeout(r, wait));
		const t0 = performance.now();
		pending.push(
			send().then(
				() => void latencies.push(performance.now() - t0),
				() => void errors++
			)
		);
	}
	await Promise.all(pending);
	const elapsed = performance.now() - started;
	latencies.sort((a, b) => a - b);
	return { ok: latencies.length, errors, latencies, achievedRps: Math.round((latencies.length / elapsed) * 1000) };
}

interface Row {
	mode: string;
	rate: number;
	direct: { p50: number; p99: number; rps: number; errors: number };
	platform: { p50: number; p99: number; rps: number; errors: number };
	overhead: { p50: number; p99: number };
	cpuMsPerRequest: number; // the platform's processes, all threads
}

// CPU milliseconds the platform's processes spent (all threads) while fn ran.
const ticksOf = (pids: number[]) => pids.reduce((a, p) => a + cpuTicks(p), 0);
async function cpuMsOf<T>(pids: number[], fn: () => Promise<T>): Promise<[T, number]> {
	const before = ticksOf(pids);
	const result = await fn();
	return [result, (ticksOf(pids) - before) * 10];
}

// Waits until the target's processes are idle (at most 5% of a core over a second; 30 s at most), so that work a
// step left queued behind its answers (events, completion logs, their consumers) is not billed to the next step.
async function settle(pids: number[], maxMs = 30_000) {
	const until = Date.now() + maxMs;
	let last = ticksOf(pids);
	while (Date.now() < until) {
		await new Promise(r => setTimeout(r, 1000));
		const now = ticksOf(pids);
		if (now - last <= 5) return; // ticks of 10 ms
		last = now;
	}
}

// Closed loop: `connections` callers each send the next request when the last one is answered, for durationMs.
async function closedLoop(connections: number, durationMs: number, send: () => Promise<unknown>): Promise<Sample> {
	const latencies: number[] = [];
	let errors = 0;
	const started = performance.now();
	const end = started + durationMs;
	const caller = async () => {
		while (performance.now() < end) {
			const t0 = performance.now();
			await send().then(
				() => void latencies.push(performance.now() - t0),
				() => void errors++
			);
		}
	};
	await Promise.all(Array.from({ length: connections }, caller));
	const elapsed = performance.now() - started;
	latencies.sort((a, b) => a - b);
	return { ok: latencies.length, errors, latencies, achievedRps: Math.round((latencies.length / elapsed) * 1000) };
}

// How a mode's target is called: the platform with its API key and deployment names, Portkey with the upstream's
// key and its routing headers, the floor with the upstream's model.
interface Target {
	base: string;
	apiKey: string;
	model: string;
	streamModel?: string; // none: streams are not measured

	headers?: Record<string, string>;
}

// Commands Redis has run, all clients (the bench runs alone on it): over the saturation loop, how many each request
// cost the cluster (rate limits, cache, the usage limits' scripts).
async function redisCommands(redisUrl: string) {
	const redis = new Redis(redisUrl);
	try {
		const info = await redis.info("stats");
		return Number(/total_commands_processed:(\d+)/.exec(info)?.[1]);
	} finally {
		redis.disconnect();
	}
}

// `floorBase`: the bare proxy, also alternated with in the one-at-a-time run, so that the target's own cost (its
// latency over the floor's) is read off requests that saw the same machine. `redisUrl` (the cluster): the Redis whose
// commands, and the shared servers whose CPU, are counted per request at saturation.
async function measure(
	mode: string,
	target: Target,
	upstreamUrl: string,
	targets: Child[],
	floorBase?: string,
	redisUrl?: string
) {
	const pids = targets.map(t => t.pid);
	const direct = new OpenAI({ apiKey: "sk-bench-upstream", baseURL: upstreamUrl, maxRetries: 0 });
	const platform = new OpenAI({
		apiKey: target.apiKey,
		baseURL: `${target.base}/v1`,
		maxRetries: 0,
		defaultHeaders: target.headers
	});
	const floorClient = floorBase
		? new OpenAI({ apiKey: "none", baseURL: `${floorBase}/v1`, maxRetries: 0 })
		: undefined;
	const body = { messages: [{ role: "user" as const, content: "complete this line of code" }], temperature: 0.7 };
	const viaDirect = () => direct.chat.completions.create({ model: "bench-upstream", ...body });
	const viaPlatform = () => platform.chat.completions.create({ model: target.model, ...body });
	const viaFloor = floorClient && (() => floorClient.chat.completions.create({ model: "bench-upstream", ...body }));
	// Warm the paths (connections, JIT, caches of the organization's set-up).
	await openLoop(50, 1000, viaDirect);
	await openLoop(50, 1000, viaPlatform);
	if (viaFloor) await openLoop(50, 1000, viaFloor);
	await settle(pids);
	const [oneAtATime, unloadedCpuMs] = await cpuMsOf(pids, () =>
		interleaved(PAIRS, timed(viaDirect), timed(viaPlatform), viaFloor && timed(viaFloor))
	);
	const unloaded = { ...oneAtATime, cpuMsPerRequest: round(unloadedCpuMs / PAIRS) };
	// Streams (the IDE's usual way): time to the first token, one at a time. The floor proxy does not stream.
	const streamModel = target.streamModel;
	const firstToken = async (client: OpenAI, model: string) => {
		const t0 = performance.now();
		let first = NaN;
		for await (const chunk of await client.chat.completions.create({ model, ...body, stream: true }))
			if (Number.isNaN(first) && chunk.choices[0]?.delta?.content) first = performance.now() - t0;
		return first;
	};
	const stream =
		streamModel === undefined
			? undefined
			: await interleaved(
					STREAM_PAIRS,
					() => firstToken(direct, "bench-stream"),
					() => firstToken(platform, streamModel)
				);
	const rows: Row[] = [];
	for (const rate of RATES.filter(Boolean)) {
		await settle(pids);
		const d = await openLoop(rate, DURATION_MS, viaDirect);
		const [p, cpuMs] = await cpuMsOf(pids, () => openLoop(rate, DURATION_MS, viaPlatform));
		const s = (x: Sample) => ({
			p50: round(pct(x.latencies, 50)),
			p99: round(pct(x.latencies, 99)),
			rps: x.achievedRps,
			errors: x.errors
		});
		rows.push({
			mode,
			rate,
			direct: s(d),
			platform: s(p),
			overhead: {
				p50: round(pct(p.latencies, 50) - pct(d.latencies, 50)),
				p99: round(pct(p.latencies, 99) - pct(d.latencies, 99))
			},
			cpuMsPerRequest: round(cpuMs / p.ok)
		});
	}
	// Sustained: the offered rate is met (within 5%) with no errors and p99 under one second.
	let sustained = 0;
	for (const rate of SUSTAIN_STEPS) {
		await settle(pids);
		const p = await openLoop(rate, 3000, viaPlatform);
		if (p.errors || p.achievedRps < rate * 0.95 || pct(p.latencies, 99) > 1000) break;
		sustained = rate;
	}
	// Saturation: closed loop, the target's CPU per request and its throughput with two cores shared by all.
	await settle(pids);
	const ticks0 = pids.map(p => cpuTicks(p));
	const commands0 = redisUrl && (await redisCommands(redisUrl));
	const servers = redisUrl ? cpuMeter({ rabbitmq: RABBITMQ, postgres: POSTGRES, redis: /redis-server/ }) : undefined;
	const [sat, satCpuMs] = await cpuMsOf(pids, () => closedLoop(CONNECTIONS, SATURATION_MS, viaPlatform));
	// Taken before the work queued behind the answers (logs, events) has run: what the requests' own path costs.
	const serversUs = servers?.stop().cpuUs;
	const redisPerRequest = redisUrl && round(((await redisCommands(redisUrl)) - Number(commands0) - 1) / sat.ok);
	// Each process's share: a change to one of them shows against the others, whose code did not change, in the
	// same run (the host's speed moves the totals by tens of percent between runs).
	const byProcess = Object.fromEntries(
		targets.map((t, i) => [t.name, round(((cpuTicks(t.pid) - ticks0[i]) * 10) / sat.ok)])
	);
	const saturation = {
		connections: CONNECTIONS,
		rps: sat.achievedRps,
		errors: sat.errors,
		p50: round(pct(sat.latencies, 50)),
		p99: round(pct(sat.latencies, 99)),
		cpuMsPerRequest: round(satCpuMs / sat.ok),
		cpuMsPerRequestByProcess: byProcess,
		...(serversUs
			? {
					// The servers the cluster shares (all their clients: the bench runs alone on them).
					serversCpuMsPerRequest: Object.fromEntries(
						Object.entries(serversUs).map(([name, us]) => [name, round(us / 1000 / sat.ok)])
					),
					redisCommandsPerRequest: redisPerRequest
				}
			: {})
	};
	// Peak resident memory of each of the target's processes over the whole run (VmHWM).
	const peakRss = Object.fromEntries(targets.map(t => [t.name, peakRssMiB(t.pid)]));
	return { unloaded, stream, rows, sustained, saturation, peakRss };
}

// One request at a time, alternating direct, platform (and the floor), so all see the same machine: the path's own
// cost. Each call measures itself (a whole request, or a stream's time to its first token).
async function interleaved(
	pairs: number,
	direct: () => Promise<number>,
	platform: () => Promise<number>,
	floor?: () => Promise<number>
) {
	const d: number[] = [],
		p: number[] = [],
		f: number[] = [];
	for (let i = 0; i < pairs; i++) {
		d.push(await direct());
		p.push(await platform());
		if (floor) f.push(await floor());
	}
	for (const x of [d, p, f]) x.sort((a, b) => a - b);
	const s = (x: number[]) => ({ p50: round(pct(x, 50)), p90: round(pct(x, 90)), p99: round(pct(x, 99)) });
	const over = (x: number[], y: number[]) => ({
		p50: round(pct(x, 50) - pct(y, 50)),
		p90: round(pct(x, 90) - pct(y, 90)),
		p99: round(pct(x, 99) - pct(y, 99))
	});
	return {
		direct: s(d),
		platform: s(p),
		overhead: over(p, d),
		...(floor && { floor: s(f), floorOverhead: over(f, d), overFloor: over(p, f) })
	};
}

const timed = (fn: () => Promise<unknown>) => async () => {
	const t0 = performance.now();
	await fn();
	return performance.now() - t0;
};

const round = (n: number) => Math.round(n * 100) / 100;

// The floor: a bare proxy with the platform's SDK client and transport, nothing else (bench/bare-ai-proxy.ts). It
// runs for the whole bench: the platform modes alternate with it one request at a time.
const FLOOR_BASE = "http://127.0.0.1:3993";
function startFloor(upstreamUrl: string) {
	const env = {
		UPSTREAM_URL: upstreamUrl,
		UPSTREAM_KEY: "sk-bench-upstream",
		PORT: "3993",
		AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1"
	};
	return spawnChild("bare proxy", "bench/bare-ai-proxy.ts", env);
}

// The deployments ai-setup.ts configures on the platform, in front of the upstream's two models.
const PLATFORM_MODELS = { model: "bench-model", streamModel: "bench-stream-model" };
// Called by the upstream's own name (the floor and Portkey, neither of which streams here).
const UPSTREAM_MODELS = { model: "bench-upstream" };

// Portkey's gateway from npm, into a cache folder the repository ignores; undefined (and said why) when it cannot be
// installed, e.g. with no network.
function installPortkey(): string | undefined {
	const dir = path.join(__dirname, ".cache", "portkey");
	const pkg = path.join(dir, "node_modules", "@portkey-ai", "gateway");
	const installed = () => {
		try {
			return JSON.parse(fs.readFileSync(path.join(pkg, "package.json"), "utf8")).version === PORTKEY_VERSION;
		} catch {
			return false;
		}
	};
	if (!installed()) {
		console.log(`installing @portkey-ai/gateway@${PORTKEY_VERSION} into ${path.relative(process.cwd(), dir)}…`);
		fs.mkdirSync(dir, { recursive: true });
		fs.writeFileSync(path.join(dir, "package.json"), '{ "private": true }\n');
		try {
			execFileSync(
				"npm",
				[
					"install",
					"--prefix",
					dir,
					"--no-save",
					"--no-audit",
					"--no-fund",
					`@portkey-ai/gateway@${PORTKEY_VERSION}`
				],
				{ stdio: "pipe", timeout: 180_000 }
			);
		} catch (err: any) {
			console.log(
				`portkey: npm install failed, mode skipped (${String(err.stderr ?? err.message)
					.trim()
					.slice(-300)})`
			);
			return undefined;
		}
	}
	return installed() ? path.join(pkg, "build", "start-server.js") : undefined;
}

// Portkey: its Node server, routed to the upstream by headers (provider openai, the upstream as custom host), the
// upstream's key passed through as the bearer token. Its streamed answers fail on Node 20 (a 500: it appends its
// headers to the upstream's fetch Response, whose headers are immutable), so streams are not compared.
async function portkey(upstreamUrl: string, entry: string) {
	const port = 3994;
	const node = spawnChild("portkey", "bench/portkey-launch.mjs", {
		PORTKEY_ENTRY: entry,
		PORTKEY_PORT: String(port)
	});
	try {
		await node.waitFor(/Ready for connections/, 60_000);
		const target = {
			base: `http://127.0.0.1:${port}`,
			apiKey: "sk-bench-upstream",
			headers: { "x-portkey-provider": "openai", "x-portkey-custom-host": upstreamUrl },
			...UPSTREAM_MODELS
		};
		return await measure("portkey", target, upstreamUrl, [node], FLOOR_BASE);
	} finally {
		await node.stop();
	}
}

// Embedded: every service in one process, PGlite, in-memory cache and limits.
async function embedded(upstreamUrl: string, dataDir: string) {
	const port = 3991;
	const node = spawnChild(
		"embedded",
		npmStart.main,
		{ ...BASE_ENV, DATA_DIR: dataDir, PORT: String(port) },
		npmStart.nodeArgs
	);
	try {
		await node.waitFor(/Coder IDE node .* up/, START_MS);
		const base = `http://127.0.0.1:${port}`;
		const target = { base, apiKey: await configure(base, upstreamUrl), ...PLATFORM_MODELS };
		return await measure("embedded", target, upstreamUrl, [node], FLOOR_BASE);
	} finally {
		await node.stop();
	}
}

// Cluster: gateway, AI, auth+secrets as separate processes over RabbitMQ, PostgreSQL, Redis.
async function cluster(upstreamUrl: string) {
	const db = await createTestDatabase("cide_bench_ai", PG_ADMIN);
	const children: Child[] = [];
	const namespace = `bench-ai-${crypto.randomBytes(3).toString("hex")}`;
	try {
		const env = {
			...BASE_ENV,
			TRANSPORTER: AMQP,
			CHANNELS_URL: AMQP,
			CACHER: REDIS,
			DATABASE_URL: db.url,
			NAMESPACE: namespace
		};
		const port = 3992;
		// As compose runs it: the root on the secrets node, only its own credential on the ai node.
		const root = crypto.randomBytes(32).toString("hex");
		const masterKey = crypto.randomBytes(32).toString("base64");
		const coreEnv = { ...env, SERVICES: "auth,secrets", MASTER_KEY: masterKey, SERVICE_IDENTITY_KEY: root };
		const core = spawnChild("auth+secrets", npmStart.main, coreEnv, npmStart.nodeArgs);
		children.push(core);
		await core.waitFor(/Coder IDE node .* up/, START_MS);
		const aiCredential = ["ai", "ai-agent-runs"].map(s => `${s}:${deriveCredential(root, s)}`).join(",");
		const ai = spawnChild(
			"ai",
			npmStart.main,
			{ ...env, SERVICES: "ai", SERVICE_CREDENTIALS: aiCredential },
			npmStart.nodeArgs
		);
		const gw = spawnChild(
			"gateway",
			npmStart.main,
			{ ...env, SERVICES: "gateway", PORT: String(port) },
			npmStart.nodeArgs
		);
		children.push(ai, gw);
		await Promise.all([ai.waitFor(/Coder IDE node .* up/, START_MS), gw.waitFor(/Coder IDE node .* up/, START_MS)]);
		const base = `http://127.0.0.1:${port}`;
		const target = { base, apiKey: await configure(base, upstreamUrl), ...PLATFORM_MODELS };
		return await measure("cluster", target, upstreamUrl, children, FLOOR_BASE, REDIS);
	} finally {
		await Promise.all(children.map(c => c.stop().catch(() => undefined)));
		await db.drop().catch(() => undefined);
		// Its queues and exchanges too: RabbitMQ keeps files open for every queue left behind.
		await deleteRabbitObjects([namespace]).catch(() => undefined);
	}
}

async function main() {
	console.log("AI gateway overhead bench…");
	// The platform runs as `npm start` runs it: compiled, with its node flags.
	if (MODES.includes("embedded") || MODES.includes("cluster")) buildIfStale();
	const up = spawnChild("upstream", "bench/ai-upstream.ts", {});
	const upstreamUrl = (await up.waitFor(/upstream listening at (\S+)/, 60_000))[1];
	const results: any = {
		generatedAt: new Date().toISOString(),
		machine: { nproc: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30) },
		durationMs: DURATION_MS,
		modes: {}
	};
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-bench-ai-"));
	const floorProxy = startFloor(upstreamUrl);
	try {
		await floorProxy.waitFor(/listening/, 60_000);
		if (MODES.includes("floor"))
			results.modes.floor = await measure(
				"floor",
				{ base: FLOOR_BASE, apiKey: "none", ...UPSTREAM_MODELS },
				upstreamUrl,
				[floorProxy]
			);
		const portkeyEntry = MODES.includes("portkey") ? installPortkey() : undefined;
		if (portkeyEntry) results.modes.portkey = await portkey(upstreamUrl, portkeyEntry);
		if (MODES.includes("embedded")) results.modes.embedded = await embedded(upstreamUrl, dataDir);
		if (MODES.includes("cluster")) results.modes.cluster = await cluster(upstreamUrl);
	} finally {
		await floorProxy.stop();
		await up.stop();
		fs.rmSync(dataDir, { recursive: true, force: true });
	}

	console.log("\nAI gateway overhead: openai SDK → upstream directly vs → the target's /v1/chat/completions");
	const pp = (x: { p50: number; p90?: number; p99: number }) =>
		[x.p50, x.p90, x.p99].filter(v => v != null).join(" / ");
	console.log(
		"mode      offered/s   direct p50/(p90/)p99 ms   target p50/(p90/)p99 ms   added p50/(p90/)p99 ms   errors   CPU ms/request"
	);
	for (const mode of Object.keys(results.modes)) {
		const u = results.modes[mode].unloaded;
		const m = mode.padEnd(9);
		console.log(
			`${m} ${"1 at a time".padStart(11)} ${pp(u.direct).padStart(23)}   ${pp(u.platform).padStart(23)}   ${pp(u.overhead).padStart(22)}        -   ${u.cpuMsPerRequest}`
		);
		if (u.floor)
			console.log(
				`${m} ${"1 at a time".padStart(11)}   floor alternated: ${pp(u.floor)} ms (floor adds ${pp(u.floorOverhead)}; target over floor ${pp(u.overFloor)})`
			);
		const st = results.modes[mode].stream;
		if (st)
			console.log(
				`${m} ${"stream TTFT".padStart(11)} ${pp(st.direct).padStart(23)}   ${pp(st.platform).padStart(23)}   ${pp(st.overhead).padStart(22)}        -   (time to first token, one at a time)`
			);
		for (const r of results.modes[mode].rows as Row[])
			console.log(
				`${m} ${String(r.rate).padStart(9)}   ${pp(r.direct).padStart(23)}   ${pp(r.platform).padStart(23)}   ${pp(r.overhead).padStart(22)}   ${String(r.platform.errors).padStart(6)}   ${r.cpuMsPerRequest}`
			);
		console.log(
			`${m} highest sustained rate with no errors: ${results.modes[mode].sustained || `< ${SUSTAIN_STEPS[0]}`} req/s`
		);
		const sat = results.modes[mode].saturation;
		const pk = results.modes.portkey?.saturation;
		console.log(
			`${m} saturation (${sat.connections} connections, closed loop): ${sat.rps} req/s, p50 / p99 ${sat.p50} / ${sat.p99} ms, ` +
				`${sat.errors} errors, ${sat.cpuMsPerRequest} CPU ms/request` +
				(pk && mode !== "portkey"
					? ` (${round(sat.rps / pk.rps)}× Portkey's req/s, ${round(sat.cpuMsPerRequest / pk.cpuMsPerRequest)}× its CPU)`
					: "")
		);
		if (Object.keys(sat.cpuMsPerRequestByProcess ?? {}).length > 1)
			console.log(
				`${m} saturation CPU ms/request by process: ${Object.entries(sat.cpuMsPerRequestByProcess)
					.map(([name, ms]) => `${name} ${ms}`)
					.join(", ")}`
			);
		if (sat.serversCpuMsPerRequest)
			console.log(
				`${m} saturation, the shared servers: CPU ms/request ${Object.entries(sat.serversCpuMsPerRequest)
					.map(([name, ms]) => `${name} ${ms}`)
					.join(", ")}; Redis commands per request ${sat.redisCommandsPerRequest}`
			);
		console.log(
			`${m} peak RSS: ${Object.entries(results.modes[mode].peakRss)
				.map(([name, mib]) => `${name} ${mib} MiB`)
				.join(", ")}`
		);
	}
	fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
	fs.writeFileSync(path.join(__dirname, "results", "ai.json"), JSON.stringify(results, null, 2) + "\n");
}

main().catch(err => {
	console.error(err);
	process.exit(1);
});
