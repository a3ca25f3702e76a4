// EventsMixin's batched consumers (`batch: { max, ms }`), embedded (in-process adapter) and over RabbitMQ with a
// child process: each event handled once whatever the redelivery, batches really batch (beyond the platform's
// default prefetch, so the channel's own maxInFlight took effect), and a batch that fails fails each of its
// messages, which are retried alone: the bad one ends dead-lettered, its neighbours are handled once.
import crypto from "crypto";
import pg from "pg";
import amqp from "amqplib";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { createTestBroker } from "../helpers/broker";
import { startNode } from "../helpers/process";
import { deleteRabbitObjects } from "../helpers/rabbit";
import { waitUntil } from "../helpers/wait";
import { EXCHANGE_OPTIONS, QUEUE_OPTIONS } from "../../lib/events/topology";
import { DEMO_BATCH_TABLES_SQL } from "../fixtures/services/demo-batch/demo-batch.service";

jest.setTimeout(90_000);

const FIXTURES_DIR = "test/fixtures/services";
const CHANNEL = "demo-batch.events";
const event = (extra: object = {}) => ({
	type: "demo-batch.thing.happened",
	id: crypto.randomUUID(),
	time: new Date().toISOString(),
	...extra
});

async function database() {
	const db = await createTestDatabase();
	const pool = new pg.Pool({ connectionString: db.url, max: 2 });
	pool.on("error", () => undefined);
	await pool.query(DEMO_BATCH_TABLES_SQL);
	const sql = async (text: string, params: unknown[] = []) => (await pool.query(text, params)).rows;
	return { db, pool, sql };
}

const handledCounts = (sql: Awaited<ReturnType<typeof database>>["sql"]) =>
	sql(`SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM demo_batch_handled`).then(r => r[0]);

describeWith(["postgres"])("batched consumers, embedded (in-process adapter)", () => {
	let d: Awaited<ReturnType<typeof database>>;
	let broker: ServiceBroker;
	let stop: () => Promise<void>;

	beforeAll(async () => {
		d = await database();
		const t = await createTestBroker(
			{
				DATABASE_URL: d.db.url,
				NAMESPACE: uniqueNamespace("batch"),
				SERVICES_DIR: FIXTURES_DIR,
				CHANNELS_MAX_RETRIES: "3",
				CHANNELS_RETRY_BASE_MS: "5"
			},
			["test/fixtures/services/demo-batch/demo-batch.service.ts"]
		);
		broker = t.broker;
		stop = t.stop;
	});
	afterAll(async () => {
		await stop?.();
		await d?.pool.end();
		await d?.db.drop();
	});
	const send = (e: object | object[]) => (broker as any).sendToChannel(CHANNEL, e) as Promise<void>;

	// The poison event ends in dead_letter_events, alone, and `good` other events are handled once each.
	async function poisonAloneDeadLettered(poison: { id: string }, good: number) {
		await waitUntil(
			"the poison event dead-lettered",
			() => d.sql("SELECT event_id FROM dead_letter_events WHERE consumer_group = 'demo-batch'"),
			rows => rows.length > 0
		);
		const h = await waitUntil(
			"the good events handled",
			() => handledCounts(d.sql),
			c => c.ids === good
		);
		expect(h).toEqual({ rows: good, ids: good });
		expect(await d.sql("SELECT event_id FROM dead_letter_events WHERE consumer_group = 'demo-batch'")).toEqual([
			{ event_id: poison.id }
		]);
	}

	test("each event once, whatever the duplicates; messages are handled in batches", async () => {
		await d.sql("TRUNCATE demo_batch_handled, demo_batches");
		const events = Array.from({ length: 140 }, () => event());
		const deliveries = events.flatMap((e, i) => Array.from({ length: 1 + (i % 3) }, () => e));
		await Promise.all(deliveries.sort(() => Math.random() - 0.5).map(send));
		const h = await waitUntil(
			"every event handled",
			() => handledCounts(d.sql),
			c => c.ids === 140
		);
		expect(h).toEqual({ rows: 140, ids: 140 });
		const [{ max, batches }] = await d.sql(
			"SELECT max(size)::int AS max, count(*)::int AS batches FROM demo_batches"
		);
		expect(max).toBeGreaterThan(1);
		expect(batches).toBeLessThan(140);
	});

	test("an event of a type the channel's `types` leaves out is acknowledged with no transaction and no record", async () => {
		await d.sql("TRUNCATE demo_batch_handled, demo_batches");
		const other = event({ type: "demo-batch.thing.ignored" });
		const wanted = event();
		// In-process, sending resolves once the consumer has taken each.
		await Promise.all([send(other), send(wanted)]);
		await waitUntil(
			"the wanted event handled",
			() => handledCounts(d.sql),
			c => c.ids === 1
		);
		const recorded = await d.sql("SELECT event_id FROM processed_events WHERE event_id = ANY($1::uuid[])", [
			[other.id, wanted.id]
		]);
		expect(recorded).toEqual([{ event_id: wanted.id }]);
		expect(await d.sql("SELECT event_id FROM demo_batch_handled")).toEqual([{ event_id: wanted.id }]);
	});

	test("a failing batch fails each message; retried alone, the bad one is dead-lettered, the rest handled once", async () => {
		await d.sql("TRUNCATE demo_batch_handled, demo_batches");
		const good = Array.from({ length: 30 }, () => event());
		const poison = event({ poison: true });
		await Promise.all([...good.slice(0, 15), poison, ...good.slice(15)].map(send));
		await poisonAloneDeadLettered(poison, 30);
		// Its failed attempts rolled back its processed_events row.
		expect(await d.sql("SELECT 1 FROM processed_events WHERE event_id = $1", [poison.id])).toEqual([]);
	});

	test("a message packing a relay pass's events: they join one batch; with a poison one, it alone is dead-lettered", async () => {
		await d.sql("TRUNCATE demo_batch_handled, demo_batches");
		await d.sql("DELETE FROM dead_letter_events");
		const good = Array.from({ length: 20 }, () => event());
		const poison = event({ poison: true });
		const other = event({ type: "demo-batch.thing.ignored" });
		// One message: the good events (one of them twice), another type, and a poison event.
		await send([...good.slice(0, 10), other, good[0], poison, ...good.slice(10)]);
		await poisonAloneDeadLettered(poison, 20);
		expect(
			await d.sql("SELECT 1 FROM processed_events WHERE event_id = ANY($1::uuid[])", [[poison.id, other.id]])
		).toEqual([]);
		// The first attempt took the message's events as one batch, which the poison event failed: nothing of it was
		// committed, and the retries took each event alone.
		expect(await d.sql("SELECT size FROM demo_batches WHERE size > 1")).toEqual([]);

		// Without one, a message's events are one batch.
		await d.sql("TRUNCATE demo_batch_handled, demo_batches");
		await send(Array.from({ length: 30 }, () => event()));
		await waitUntil(
			"the second message's events handled",
			() => handledCounts(d.sql),
			c => c.ids === 30
		);
		expect(await d.sql("SELECT size FROM demo_batches")).toEqual([{ size: 30 }]);
	});
});

describeWith(["postgres", "rabbitmq"])("batched consumers over RabbitMQ (child process)", () => {
	const ns = uniqueNamespace("batch");
	let d: Awaited<ReturnType<typeof database>>;
	let node: ReturnType<typeof startNode> | undefined;

	beforeAll(async () => {
		d = await database();
	});
	afterAll(async () => {
		await node?.stop("SIGKILL");
		await deleteRabbitObjects([ns]).catch(() => undefined);
		await d?.pool.end();
		await d?.db.drop();
	});

	test("batches beyond the default prefetch; duplicates handled once; messages acked only after their commit", async () => {
		const exchange = `${ns}.${CHANNEL}`;
		const queue = `demo-batch.${exchange}`;
		const events = Array.from({ length: 3000 }, () => event());
		const conn = await amqp.connect(AMQP_URL);
		try {
			const ch = await conn.createConfirmChannel();
			await ch.assertExchange(exchange, "fanout", EXCHANGE_OPTIONS);
			await ch.assertQueue(queue, QUEUE_OPTIONS);
			await ch.bindQueue(queue, exchange, "");
			for (const [i, e] of events.entries())
				for (let n = 0; n <= i % 2; n++)
					ch.publish(exchange, "", Buffer.from(JSON.stringify(e)), { persistent: true, headers: {} });
			await ch.waitForConfirms();
		} finally {
			await conn.close();
		}
		node = startNode({
			NAMESPACE: ns,
			SERVICES_DIR: FIXTURES_DIR,
			SERVICES: "demo-batch",
			CHANNELS_URL: AMQP_URL,
			DATABASE_URL: d.db.url,
			CHANNELS_MAX_IN_FLIGHT: "10"
		});
		node.ready.catch(() => undefined);
		const h = await waitUntil(
			"every event handled",
			() => handledCounts(d.sql),
			c => c.ids === 3000,
			60_000
		);
		expect(h).toEqual({ rows: 3000, ids: 3000 });
		const [{ max }] = await d.sql("SELECT max(size)::int AS max FROM demo_batches");
		expect(max).toBeGreaterThan(10); // the channel's prefetch (2 × max), not CHANNELS_MAX_IN_FLIGHT
		// Everything acknowledged: nothing ready or unacknowledged left in the queue once the node is gone.
		await node.ready;
		await waitUntil(
			"the duplicates consumed",
			async () => {
				const c = await amqp.connect(AMQP_URL);
				try {
					return (await (await c.createChannel()).checkQueue(queue)).messageCount;
				} finally {
					await c.close();
				}
			},
			n => n === 0
		);
		await node.stop("SIGTERM");
		const c = await amqp.connect(AMQP_URL);
		try {
			expect((await (await c.createChannel()).checkQueue(queue)).messageCount).toBe(0);
		} finally {
			await c.close();
		}
		expect(await handledCounts(d.sql)).toEqual({ rows: 3000, ids: 3000 });
	});
});
