// execution: how fast the durable engine moves plan steps with 2 engine replicas (child processes over RabbitMQ, one
// PostgreSQL), each step a webhook to a bare HTTP server on 127.0.0.1. A step transition is one committed state
// change of a step (pending → running, running → succeeded: two per step), each its own transaction on the run's
// lease. Measured: transitions/s from the first start to the last step's commit; dispatch latency (a run's creation
// to its first step's request, and one step's answer to the next one's request); CPU per transition of the
// PostgreSQL backends serving the bench's database (not the server's other databases) and of the engines. Bounded by
// BENCH_EXEC_RUNS × BENCH_EXEC_STEPS and BENCH_EXEC_TIMEOUT_MS. Prints a table and writes
// bench/results/execution.json, with the load average: on a shared host the figures are indicative.
import fs from "fs";
import http from "http";
import os from "os";
import path from "path";
import type { AddressInfo } from "net";
import pg from "pg";
import { startTestCluster } from "../test/helpers/cluster";
import { as } from "../test/helpers/broker";
import { cpuMeter, cpuTicks, TICK_US } from "./cpu";

const RUNS = Number(process.env.BENCH_EXEC_RUNS ?? 100);
const STEPS = Number(process.env.BENCH_EXEC_STEPS ?? 10);
const TIMEOUT_MS = Number(process.env.BENCH_EXEC_TIMEOUT_MS ?? 240_000);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

// The floor, in the same run: bare transactions of the shape one chained step commits (lock the run, update the
// step, start the next, record the run's progress) from 100 concurrent clients for FLOOR_MS, no engine around them.
const FLOOR_MS = 5000;
async function floor(url: string): Promise<number> {
	const pool = new pg.Pool({ connectionString: url, max: 20 });
	await pool.query("CREATE TABLE bench_floor (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)");
	await pool.query("INSERT INTO bench_floor SELECT g FROM generate_series(0, 299) g");
	let txs = 0;
	const end = Date.now() + FLOOR_MS;
	await Promise.all(
		Array.from({ length: 100 }, async (_, i) => {
			while (Date.now() < end) {
				const c = await pool.connect();
				try {
					await c.query("BEGIN");
					await c.query("SELECT n FROM bench_floor WHERE id = $1 FOR UPDATE", [i]);
					await c.query("UPDATE bench_floor SET n = n + 1 WHERE id = $1", [100 + i]);
					await c.query("UPDATE bench_floor SET n = n + 1 WHERE id = $1", [200 + i]);
					await c.query("UPDATE bench_floor SET n = n + 1 WHERE id = $1", [i]);
					await c.query("COMMIT");
					txs++;
				} finally {
					c.release();
				}
			}
		})
	);
	await pool.query("DROP TABLE bench_floor");
	await pool.end();
	return Math.round((2 * txs) / (FLOOR_MS / 1000));
}

// CPU ticks of each backend connected to the bench's database (pg_stat_activity, then /proc/<pid>/stat). Counted
// from a snapshot before the run to one after: a backend that ended in between is missed (the pools keep theirs).
async function backends(pool: pg.Pool): Promise<Map<number, number>> {
	const { rows } = await pool.query<{ pid: number }>(
		"SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
	);
	const ticks = new Map<number, number>();
	for (const { pid } of rows)
		try {
			ticks.set(pid, cpuTicks(pid));
		} catch {
			/* ended */
		}
	return ticks;
}

async function main() {
	// When each step's request arrived and its answer was sent, by idempotency key (`<run>:<position>`).
	const arrived = new Map<string, number>();
	const answered = new Map<string, number>();
	const server = http.createServer((req, res) => {
		const key = String(req.headers["idempotency-key"]);
		arrived.set(key, performance.timeOrigin + performance.now());
		req.resume();
		req.on("end", () => {
			res.writeHead(200, { "content-type": "application/json" }).end("{}");
			answered.set(key, performance.timeOrigin + performance.now());
		});
	});
	await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
	const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	const cluster = await startTestCluster("bexec", {
		EXECUTION_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
		EXECUTION_RUNS_PER_ORGANIZATION: "1000",
		EXECUTION_RUNS_PER_REPLICA: "64",
		LOG_LEVEL: "info"
	});
	const pool = new pg.Pool({ connectionString: cluster.db.url, max: 2 });
	try {
		const nodes = [
			cluster.start("base", "auth,planning"),
			cluster.start("engine1", "execution"),
			cluster.start("engine2", "execution")
		];
		await Promise.all(nodes.map(n => n.ready));
		const user = await cluster.register("bench-exec@example.com");
		const broker = await cluster.caller(["planning-plans", "execution-runs"]);
		const call = (action: string, params: object): Promise<any> => broker.call(action, params, as(user));
		const steps = Array.from({ length: STEPS }, (_, i) => ({
			kind: "http_webhook",
			title: `step ${i + 1}`,
			config: { url: `${url}/s${i}`, method: "POST", body: { i } }
		}));
		const plan = await call("planning-plans.create", { title: "Bench", steps });
		await call("planning-plans.approve", { id: plan.id, revision: plan.revision });

		const db0 = await backends(pool);
		const meter = cpuMeter({
			engine1: nodes[1].proc.pid!,
			engine2: nodes[2].proc.pid!,
			base: nodes[0].proc.pid!
		});
		const t0 = Date.now();
		const runIds: string[] = [];
		for (let i = 0; i < RUNS; i += 20)
			runIds.push(
				...(
					await Promise.all(
						Array.from({ length: Math.min(20, RUNS - i) }, () =>
							call("execution-runs.start", { planId: plan.id })
						)
					)
				).map(r => r.id)
			);
		for (;;) {
			const { rows } = await pool.query<{ n: number }>(
				"SELECT count(*)::int AS n FROM execution_runs WHERE status IN ('completed', 'failed', 'cancelled')"
			);
			if (rows[0].n >= RUNS) break;
			if (Date.now() - t0 > TIMEOUT_MS) throw new Error(`timed out: ${rows[0].n} of ${RUNS} runs ended`);
			await new Promise(r => setTimeout(r, 100));
		}
		const cpu = meter.stop();
		let dbTicks = 0;
		for (const [pid, t] of await backends(pool)) dbTicks += t - (db0.get(pid) ?? 0);
		const load = os.loadavg()[0];
		const floorPerSec = await floor(cluster.db.url);
		const { rows: ends } = await pool.query<{ failed: number; first: Date; last: Date }>(
			`SELECT count(*) FILTER (WHERE status <> 'completed')::int AS failed, min(created_at) AS first,
			max(finished_at) AS last FROM execution_runs`
		);
		const { rows: created } = await pool.query<{ id: string; at: Date }>(
			"SELECT id, created_at AS at FROM execution_runs"
		);
		// A run's dispatch: created → its first step's request at the receiver. A step's: the answer to the step
		// before it → its own request (what the engine spends between two effects: commits and scheduling).
		const run = created.map(r => arrived.get(`${r.id}:0`)! - r.at.getTime()).sort((a, b) => a - b);
		const step = created
			.flatMap(r =>
				Array.from(
					{ length: STEPS - 1 },
					(_, i) => arrived.get(`${r.id}:${i + 1}`)! - answered.get(`${r.id}:${i}`)!
				)
			)
			.sort((a, b) => a - b);
		const wallMs = ends[0].last.getTime() - ends[0].first.getTime();
		const transitions = 2 * RUNS * STEPS;
		const result = {
			runs: RUNS,
			stepsPerRun: STEPS,
			failedRuns: ends[0].failed,
			replicas: 2,
			transitions,
			wallMs,
			transitionsPerSec: Math.round((transitions / wallMs) * 1000),
			floorTransitionsPerSec: floorPerSec,
			runDispatchMs: { p50: pct(run, 50), p99: pct(run, 99) },
			stepDispatchMs: { p50: pct(step, 50), p99: pct(step, 99) },
			postgresCpuUsPerTransition: Math.round((dbTicks * TICK_US) / transitions),
			enginesCpuUsPerTransition: Math.round((cpu.cpuUs.engine1 + cpu.cpuUs.engine2) / transitions),
			machineBusyPct: cpu.machineBusyPct,
			loadAverage: Math.round(load * 10) / 10
		};
		console.table({
			"transitions/s (2 replicas)": result.transitionsPerSec,
			"floor: bare step transactions, as transitions/s": result.floorTransitionsPerSec,
			"run dispatch p50 / p99 ms": `${pct(run, 50).toFixed(1)} / ${pct(run, 99).toFixed(1)}`,
			"step dispatch p50 / p99 ms": `${pct(step, 50).toFixed(1)} / ${pct(step, 99).toFixed(1)}`,
			"PostgreSQL CPU µs / transition (this database's backends)": result.postgresCpuUsPerTransition,
			"engines' CPU µs / transition": result.enginesCpuUsPerTransition,
			"machine busy % / load average": `${result.machineBusyPct} / ${result.loadAverage}`,
			"failed runs": result.failedRuns
		});
		fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
		fs.writeFileSync(path.join(__dirname, "results", "execution.json"), JSON.stringify(result, null, 2) + "\n");
	} finally {
		await pool.end();
		await cluster.stop();
		server.close();
	}
}

main().then(
	() => process.exit(0),
	err => {
		console.error(err);
		process.exit(1);
	}
);
