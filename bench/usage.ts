// usage: ai.usage.recorded events ingested exactly once (EventsMixin's batched consumer, services/usage), over
// RabbitMQ into PostgreSQL, by SERVICES=usage nodes run as child processes:
// - floor: the same messages consumed from RabbitMQ by a bare amqplib consumer in this process (parse and ack, no
//   database): what the broker alone allows on this machine;
// - 1 and 2 consumer processes draining a queue pre-loaded with BENCH_USAGE_EVENTS events (+10% duplicates), one
//   event a message, and 1 consumer with 100 events a message (as the outbox relay packs a pass's events):
//   events/s from the first commit to the last (usage_events.recorded_at), and a check that the aggregates count
//   each event once;
// - event-to-aggregate latency: one consumer, events published open loop at BENCH_USAGE_RATE/s for
//   BENCH_USAGE_LATENCY_MS; per event, the time from its publication to the statement that recorded it (in the
//   transaction that updates the aggregates; the commit follows within that transaction's remaining statements).
// Writes bench/results/usage.json.
import fs from "fs";
import os from "os";
import path from "path";
import crypto from "crypto";
import pg from "pg";
import amqp from "amqplib";
import { createTestDatabase, uniqueNamespace, AMQP_URL } from "../test/helpers/infra";
import { startNode } from "../test/helpers/process";
import { deleteRabbitObjects } from "../test/helpers/rabbit";
import { loadConfig, setConfig } from "../lib/config";
import { openPostgres } from "../lib/db/driver";
import { migrate } from "../lib/db/migrate";
import { declareUsageQueue, publishEvents, usageQueue } from "../test/usage/publish";
import { usageEvent } from "../test/usage/events";

const EVENTS = Number(process.env.BENCH_USAGE_EVENTS ?? 50_000);
const RATE = Number(process.env.BENCH_USAGE_RATE ?? 2000);
const LATENCY_MS = Number(process.env.BENCH_USAGE_LATENCY_MS ?? 5000);
const ORGS = 5;
const MODELS = ["gpt-a", "gpt-b", "claude-c", "embed-d"];

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const round = (v: number) => Math.round(v * 10) / 10;
const percentiles = (sorted: number[]) => ({
	p50: round(pct(sorted, 50)),
	p99: round(pct(sorted, 99)),
	max: round(sorted[sorted.length - 1])
});
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

function makeEvents(orgs: { id: string; users: string[] }[], n: number, at = () => new Date().toISOString()) {
	return Array.from({ length: n }, (_, i) => {
		const org = orgs[i % orgs.length];
		const model = MODELS[i % MODELS.length];
		return usageEvent(org.id, {
			userId: org.users[i % org.users.length],
			model,
			requestedModel: model,
			kind: model.startsWith("embed") ? "embedding" : "completion",
			inputTokens: 200 + (i % 1000),
			outputTokens: i % 500,
			cachedTokens: i % 50,
			toolCalls: i % 7 === 0 ? 1 : 0,
			cost: 0.0001,
			occurredAt: at()
		});
	});
}

async function floor(ns: string, events: object[]) {
	await declareUsageQueue(ns);
	await publishEvents(ns, events);
	const conn = await amqp.connect(AMQP_URL, { noDelay: true });
	const ch = await conn.createChannel();
	await ch.prefetch(1000);
	let got = 0;
	const started = performance.now();
	await new Promise<void>(resolve => {
		void ch.consume(usageQueue(ns), msg => {
			if (!msg) return;
			JSON.parse(msg.content.toString());
			ch.ack(msg);
			if (++got === events.length) resolve();
		});
	});
	const seconds = (performance.now() - started) / 1000;
	await conn.close();
	return { events: events.length, perSecond: Math.round(events.length / seconds) };
}

// Publishes events open loop at RATE/s for LATENCY_MS (each stamped when made, just before it is sent); returns how
// many were sent.
async function openLoop(ns: string, orgs: { id: string; users: string[] }[]) {
	const publisher = await amqp.connect(AMQP_URL, { noDelay: true });
	const ch = await publisher.createConfirmChannel();
	const total = Math.round((RATE * LATENCY_MS) / 1000);
	const tick = 10;
	const perTick = Math.max(1, Math.round((RATE * tick) / 1000));
	const started = performance.now();
	let sent = 0;
	while (sent < total) {
		const due = Math.min(total, Math.round(((performance.now() - started) / 1000) * RATE) + perTick);
		for (const e of makeEvents(orgs, due - sent))
			ch.publish(`${ns}.ai.events`, "", Buffer.from(JSON.stringify(e)), { persistent: true, headers: {} });
		sent = due;
		await sleep(tick);
	}
	await ch.waitForConfirms();
	await publisher.close();
	return total;
}

// The latency floor: the same open loop to the same kind of queue, read by a bare consumer here (publication to
// receipt, no database).
async function latencyFloor(orgs: { id: string; users: string[] }[]) {
	const ns = uniqueNamespace("bench-usage-latfloor");
	await declareUsageQueue(ns);
	const conn = await amqp.connect(AMQP_URL, { noDelay: true });
	const ch = await conn.createChannel();
	await ch.prefetch(1000);
	const ms: number[] = [];
	await ch.consume(usageQueue(ns), msg => {
		if (!msg) return;
		ms.push(Date.now() - Date.parse(JSON.parse(msg.content.toString()).occurredAt));
		ch.ack(msg);
	});
	const total = await openLoop(ns, orgs);
	while (ms.length < total) await sleep(100);
	await conn.close();
	await deleteRabbitObjects([ns]).catch(() => undefined);
	return percentiles(ms.sort((a, b) => a - b));
}

async function main() {
	const db = await createTestDatabase("cide_bench");
	const namespaces: string[] = [];
	const nodes: ReturnType<typeof startNode>[] = [];
	const pool = new pg.Pool({ connectionString: db.url, max: 3 });
	pool.on("error", () => undefined);
	const one = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows[0];
	// On a shared machine, load from other processes makes a noisy run: it is recorded with the figures.
	const result: Record<string, unknown> = {
		events: EVENTS,
		settings: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("USAGE_"))),
		at: new Date().toISOString(),
		loadAverageAtStart: os.loadavg()[0]
	};
	try {
		setConfig(loadConfig({ DATABASE_URL: db.url }));
		const conn = await openPostgres(db.url, 2);
		await migrate(conn);
		await conn.close();
		const orgs: { id: string; users: string[] }[] = [];
		for (let o = 0; o < ORGS; o++) {
			const { id } = await one("INSERT INTO organizations (name, slug) VALUES ($1, $1) RETURNING id", [
				`org${o}`
			]);
			orgs.push({ id, users: Array.from({ length: 20 }, () => crypto.randomUUID()) });
		}
		const reset = () =>
			pool.query(
				"TRUNCATE usage_events, usage_aggregates_hourly, usage_aggregates_daily, usage_aggregates_monthly, processed_events"
			);
		const consumers = (ns: string, n: number) =>
			Array.from({ length: n }, (_, i) => {
				const node = startNode(
					{
						NAMESPACE: ns,
						NODE_ID: `${ns}-c${i}`,
						SERVICES: "usage",
						CHANNELS_URL: AMQP_URL,
						DATABASE_URL: db.url,
						LOG_LEVEL: "info",
						// The module's settings (USAGE_BATCH_MAX, …) as this run was given them.
						...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("USAGE_")))
					},
					{ waitUp: false }
				);
				nodes.push(node);
				return node;
			});
		// Stops the consumers; returns how many batches failed (a deadlock or another error: retried, so still counted once).
		const stopAll = async () => {
			let failed = 0;
			for (const n of nodes.splice(0)) {
				await n.stop("SIGTERM");
				failed += n.output().match(/Batch of \d+ on .* failed/g)?.length ?? 0;
				for (const line of n
					.output()
					.split("\n")
					.filter(l => /deadlock/i.test(l))
					.slice(0, 3))
					console.log(line);
			}
			return failed;
		};

		const floorNs = uniqueNamespace("bench-usage-floor");
		namespaces.push(floorNs);
		result.floor = await floor(floorNs, makeEvents(orgs, EVENTS));
		console.log(`floor (bare amqplib consume+ack, no DB): ${JSON.stringify(result.floor)}`);

		// One event per message, with one and two consumers; then 100 to a message, as the relay packs a pass's events.
		for (const [n, perMessage] of [
			[1, 1],
			[2, 1],
			[1, 100]
		]) {
			await reset();
			const ns = uniqueNamespace(`bench-usage-${n}`);
			namespaces.push(ns);
			const events = makeEvents(orgs, EVENTS);
			const stream = [...events, ...events.filter((_, i) => i % 10 === 0)];
			await declareUsageQueue(ns);
			await publishEvents(ns, stream, undefined, undefined, perMessage);
			consumers(ns, n);
			for (;;) {
				const { c } = await one("SELECT count(*)::int AS c FROM processed_events");
				if (c >= EVENTS) break;
				await sleep(200);
			}
			// The duplicates queued after the last new event: drained when the queue is empty.
			for (;;) {
				const c = await amqp.connect(AMQP_URL);
				const depth = (await (await c.createChannel()).checkQueue(usageQueue(ns))).messageCount;
				await c.close();
				if (depth === 0) break;
				await sleep(200);
			}
			const failedBatches = await stopAll();
			const span = await one(
				`SELECT count(*)::int AS n, extract(epoch FROM max(recorded_at) - min(recorded_at))::float8 AS s FROM usage_events`
			);
			const agg = await one("SELECT sum(requests)::int AS r FROM usage_aggregates_monthly");
			const key = `consumers${n}${perMessage > 1 ? `Packed${perMessage}` : ""}`;
			result[key] = {
				published: stream.length,
				recorded: span.n,
				aggregatedRequests: agg.r,
				exactlyOnce: span.n === EVENTS && agg.r === EVENTS,
				failedBatches,
				perSecond: Math.round(EVENTS / span.s)
			};
			console.log(`${n} consumer process(es), ${perMessage} event(s) a message: ${JSON.stringify(result[key])}`);
		}

		// Latency: open loop at RATE/s with one consumer already up.
		await reset();
		const ns = uniqueNamespace("bench-usage-lat");
		namespaces.push(ns);
		await declareUsageQueue(ns);
		const [node] = consumers(ns, 1);
		await node.waitFor(/Coder IDE node .* up/, 120_000);
		await sleep(1000);
		const total = await openLoop(ns, orgs);
		for (;;) {
			const { c } = await one("SELECT count(*)::int AS c FROM usage_events");
			if (c >= total) break;
			await sleep(200);
		}
		await stopAll();
		const lat = (
			await pool.query(
				"SELECT extract(epoch FROM recorded_at - occurred_at)::float8 * 1000 AS ms FROM usage_events ORDER BY 1"
			)
		).rows.map(r => r.ms as number);
		result.latency = {
			rate: RATE,
			events: total,
			...percentiles(lat),
			// Measured right after, in the same minute: publication to a bare consumer.
			floor: await latencyFloor(orgs)
		};
		console.log(`event-to-aggregate latency at ${RATE}/s (ms): ${JSON.stringify(result.latency)}`);
		fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
		fs.writeFileSync(path.join(__dirname, "results", "usage.json"), JSON.stringify(result, null, 2) + "\n");
	} finally {
		for (const n of nodes) await n.stop("SIGKILL");
		await pool.end();
		await deleteRabbitObjects(namespaces).catch(() => undefined);
		await db.drop();
	}
}

main().then(
	() => process.exit(0),
	err => {
		console.error(err);
		process.exit(1);
	}
);
