// mcp: what the MCP module adds to a tool call and what its client pool costs, in one process on real PostgreSQL
// (broker calls, no HTTP), against the tiny stdio server (test/mcp/fixtures/tiny-server.cjs: no SDK, starts fast).
// - added latency of a warm mcp.call over calling the same server directly with the SDK (same machine, same server
//   kind, each its own process): p50/p99 of both, one call at a time, and the difference;
// - cold registration (mcp-servers.create: spawn, initialize, discovery, rows and events written);
// - tool calls/s with BENCH_MCP_CONCURRENCY in flight, and the errors among them (must be 0);
// - peak RSS of this process and of the children with BENCH_MCP_LIVE stdio servers live at once;
// - BENCH_MCP_CYCLES open/close cycles of a pooled stdio client (spawn, initialize, ping, close, reap) on the sh tiny
//   server (fixtures/tiny-server.sh: starts in milliseconds), with this process's RSS and heap before, after the
//   first 10% and at the end, and the children left (must be 0).
// Every call writes its execution row and events, as in production. Rate limits are off (MCP_ORG_CALLS_PER_MINUTE=0)
// and counted in process memory (no REDIS_URL). Prints a table and writes bench/results/mcp.json.
// Env: BENCH_MCP_CALLS (3000), BENCH_MCP_CONCURRENCY (16), BENCH_MCP_LIVE (50), BENCH_MCP_CYCLES (10000),
// BENCH_MCP_CYCLE_CONCURRENCY (8), BENCH_MCP_REGISTRATIONS (20), BENCH_MCP_PARTS (all of
// "registration,warm,throughput,live,cycles"; e.g. "cycles" alone), BENCH_MCP_MAX_SECONDS (1800: the cycles stop
// there and say how many ran).
import { execFileSync } from "child_process";
import fs from "fs";
import path from "path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { createTestBroker, as } from "../test/helpers/broker";
import { createTestDatabase } from "../test/helpers/infra";
import { MCP_STACK, TINY, TINY_SH } from "../test/mcp/stack";
import { organizationSql } from "../lib/db/tenant";
import type { McpThis } from "../services/mcp/mcp.service";

const CALLS = Number(process.env.BENCH_MCP_CALLS ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_MCP_CONCURRENCY ?? 16);
const LIVE = Number(process.env.BENCH_MCP_LIVE ?? 50);
const CYCLES = Number(process.env.BENCH_MCP_CYCLES ?? 10_000);
const CYCLE_CONCURRENCY = Number(process.env.BENCH_MCP_CYCLE_CONCURRENCY ?? 8);
const REGISTRATIONS = Number(process.env.BENCH_MCP_REGISTRATIONS ?? 20);
const PARTS = new Set(
	(process.env.BENCH_MCP_PARTS ?? "registration,warm,throughput,live,cycles").split(",").map(s => s.trim())
);
const MAX_SECONDS = Number(process.env.BENCH_MCP_MAX_SECONDS ?? 1800);

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const ms = (v: number) => Math.round(v * 100) / 100;
const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

async function timed(n: number, fn: (i: number) => Promise<unknown>) {
	const lat: number[] = [];
	for (let i = 0; i < n; i++) {
		const t0 = performance.now();
		await fn(i);
		lat.push(performance.now() - t0);
	}
	lat.sort((a, b) => a - b);
	return { p50: ms(pct(lat, 50)), p99: ms(pct(lat, 99)) };
}

// Our child processes (not counting the ps that lists them).
function children(): number[] {
	try {
		return execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" })
			.split("\n")
			.map(l => l.trim().split(/\s+/))
			.filter(([pid, comm]) => Number(pid) > 0 && comm !== "ps")
			.map(([pid]) => Number(pid));
	} catch {
		return [];
	}
}
const rssOf = (pid: number) => {
	try {
		const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
		return m ? Number(m[1]) * 1024 : 0;
	} catch {
		return 0;
	}
};

async function main() {
	const db = await createTestDatabase();
	const t = await createTestBroker(
		{
			DATABASE_URL: db.url,
			MCP_ORG_CALLS_PER_MINUTE: "0",
			MCP_HEALTH_INTERVAL_MS: "0",
			MCP_REFRESH_INTERVAL_MS: "0",
			MCP_IDLE_TIMEOUT_MS: "3600000"
		},
		MCP_STACK
	);
	const broker = t.broker;
	const svc = broker.getLocalService("mcp") as unknown as McpThis;
	const owner: any = await broker.call("auth.register", {
		email: "bench-mcp@example.com",
		password: "correct horse battery",
		name: "Bench"
	});
	const auth: any = await broker.call("auth.resolve", {
		token: owner.accessToken,
		organizationId: owner.organization.id
	});
	const call = (action: string, params: unknown) => broker.call<any, any>(action, params, as(auth));
	const results: Record<string, unknown> = {};

	if (PARTS.has("registration")) await registration(call, svc, auth.organizationId, results);
	if (PARTS.has("warm") || PARTS.has("throughput"))
		await call("mcp-servers.create", { name: "warm", transport: "stdio", command: process.execPath, args: [TINY] });
	if (PARTS.has("warm")) await warm(call, svc, results);
	if (PARTS.has("throughput")) await throughput(call, svc, results);
	if (PARTS.has("live")) await live(call, svc, results);
	if (PARTS.has("cycles")) await cycles(call, svc, auth.organizationId, results);

	console.table(Object.entries(results).map(([k, v]) => ({ measure: k, value: JSON.stringify(v) })));
	fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
	const file = PARTS.size === 5 ? "mcp.json" : `mcp.${[...PARTS].join("+")}.json`;
	fs.writeFileSync(
		path.join(__dirname, "results", file),
		JSON.stringify({ date: new Date().toISOString(), ...results }, null, 2)
	);
	await t.stop();
	await db.drop();
	process.exit(0);
}

type Call = (action: string, params: unknown) => Promise<any>;
type Results = Record<string, unknown>;

// Cold registration.
async function registration(call: Call, svc: McpThis, organizationId: string, results: Results) {
	const reg = await timed(REGISTRATIONS, i =>
		call("mcp-servers.create", { name: `cold-${i}`, transport: "stdio", command: process.execPath, args: [TINY] })
	);
	results.coldRegistrationMs = reg;
	for (let i = 0; i < REGISTRATIONS; i++)
		await svc.pool.close(organizationId, (await svc.state(organizationSql(organizationId), `cold-${i}`)).row.id);
}

async function warm(call: Call, svc: McpThis, results: Results) {
	// Warm call: direct SDK client vs mcp.call, interleaved in rounds so both see the same machine.
	const direct = new Client({ name: "bench", version: "1" }, { capabilities: {} });
	await direct.connect(new StdioClientTransport({ command: process.execPath, args: [TINY] }));
	const args = { message: "hello" };
	for (let i = 0; i < 200; i++) {
		await direct.callTool({ name: "echo", arguments: args });
		await call("mcp.call", { server: "warm", tool: "echo", arguments: args });
	}
	const directLat: number[] = [];
	const platformLat: number[] = [];
	for (let round = 0; round < 10; round++) {
		for (let i = 0; i < CALLS / 10; i++) {
			let t0 = performance.now();
			await direct.callTool({ name: "echo", arguments: args });
			directLat.push(performance.now() - t0);
			t0 = performance.now();
			await call("mcp.call", { server: "warm", tool: "echo", arguments: args });
			platformLat.push(performance.now() - t0);
		}
	}
	directLat.sort((a, b) => a - b);
	platformLat.sort((a, b) => a - b);
	results.warmCall = {
		direct: { p50: ms(pct(directLat, 50)), p99: ms(pct(directLat, 99)) },
		platform: { p50: ms(pct(platformLat, 50)), p99: ms(pct(platformLat, 99)) },
		addedP50: ms(pct(platformLat, 50) - pct(directLat, 50)),
		addedP99: ms(pct(platformLat, 99) - pct(directLat, 99))
	};
	// The same calls as work done in this process: CPU time per call (user + system, the execution log's writes and
	// events included), less sensitive than wall-clock percentiles to what else the shared host runs.
	const cpuPerCall = async (fn: () => Promise<unknown>) => {
		const n = Math.min(CALLS, 1000);
		const c0 = process.cpuUsage();
		for (let i = 0; i < n; i++) await fn();
		await svc.flush();
		const c = process.cpuUsage(c0);
		return (c.user + c.system) / n / 1000;
	};
	const directCpu = await cpuPerCall(() => direct.callTool({ name: "echo", arguments: args }));
	const platformCpu = await cpuPerCall(() => call("mcp.call", { server: "warm", tool: "echo", arguments: args }));
	results.warmCallCpuMs = { direct: ms(directCpu), platform: ms(platformCpu), added: ms(platformCpu - directCpu) };
	await direct.close();
	await svc.flush();
}

async function throughput(call: Call, svc: McpThis, results: Results) {
	const args = { message: "hello" };
	let errors = 0;
	let next = 0;
	const started = performance.now();
	await Promise.all(
		Array.from({ length: CONCURRENCY }, async () => {
			while (next++ < CALLS)
				await call("mcp.call", { server: "warm", tool: "echo", arguments: args }).catch(() => errors++);
		})
	);
	results.throughput = {
		calls: CALLS,
		concurrency: CONCURRENCY,
		perSecond: Math.round((CALLS / (performance.now() - started)) * 1000),
		errors
	};
	await svc.flush();
}

// Peak RSS with LIVE stdio servers.
async function live(call: Call, svc: McpThis, results: Results) {
	const args = { message: "hello" };
	let peakSelf = process.memoryUsage().rss;
	let peakChildren = 0;
	const sample = () => {
		peakSelf = Math.max(peakSelf, process.memoryUsage().rss);
		peakChildren = Math.max(
			peakChildren,
			children().reduce((sum, pid) => sum + rssOf(pid), 0)
		);
	};
	const rssBefore = process.memoryUsage().rss;
	for (let i = 0; i < LIVE; i++) {
		await call("mcp-servers.create", {
			name: `live-${i}`,
			transport: "stdio",
			command: process.execPath,
			args: [TINY]
		});
		if (i % 10 === 9) sample();
	}
	await Promise.all(
		Array.from({ length: LIVE }, (_, i) => call("mcp.call", { server: `live-${i}`, tool: "echo", arguments: args }))
	);
	sample();
	results.live = {
		servers: LIVE,
		liveChildren: svc.pool.pids().length,
		platformRssBeforeMb: mb(rssBefore),
		platformPeakRssMb: mb(peakSelf),
		childrenPeakRssMb: mb(peakChildren),
		perServerMb: mb(peakChildren / Math.max(1, svc.pool.pids().length))
	};
	await svc.pool.closeAll();
	await svc.flush();
}

// Open/close cycles on the pool directly (spawn, initialize, ping, close, reap).
async function cycles(call: Call, svc: McpThis, organizationId: string, results: Results) {
	await call("mcp-servers.create", { name: "cycling", transport: "stdio", command: "sh", args: [TINY_SH] });
	const spec = await svc.specFor(await svc.state(organizationSql(organizationId), "cycling"));
	await svc.pool.closeAll();
	const baseline = children().length;
	let done = 0;
	let checkpoint: { rssMb: number; heapMb: number } | undefined;
	global.gc?.();
	const first = process.memoryUsage();
	const cycleStart = performance.now();
	const deadline = cycleStart + MAX_SECONDS * 1000;
	const specs = Array.from({ length: CYCLE_CONCURRENCY }, (_, k) => ({
		...spec,
		id: `${spec.id.slice(0, -2)}${String(k).padStart(2, "0")}`
	}));
	await Promise.all(
		specs.map(async s => {
			while (done < CYCLES && performance.now() < deadline) {
				done++;
				const e = await svc.pool.acquire(s);
				await e.client.ping();
				await svc.pool.close(s.organizationId, s.id);
				if (done === Math.round(CYCLES / 10) && !checkpoint) {
					global.gc?.();
					const m = process.memoryUsage();
					checkpoint = { rssMb: mb(m.rss), heapMb: mb(m.heapUsed) };
				}
			}
		})
	);
	global.gc?.();
	const end = process.memoryUsage();
	results.cycles = {
		cycles: done,
		concurrency: CYCLE_CONCURRENCY,
		seconds: Math.round((performance.now() - cycleStart) / 100) / 10,
		perSecond: Math.round((done / (performance.now() - cycleStart)) * 1000),
		childrenLeft: children().length - baseline,
		atStart: { rssMb: mb(first.rss), heapMb: mb(first.heapUsed) },
		atTenPercent: checkpoint,
		atEnd: { rssMb: mb(end.rss), heapMb: mb(end.heapUsed) }
	};
}

main().catch(err => {
	console.error(err);
	process.exit(1);
});
