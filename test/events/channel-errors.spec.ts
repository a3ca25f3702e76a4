// The AMQP channel adapter (lib/events/channels.ts) when RabbitMQ refuses or closes its channel, against real
// RabbitMQ: a consumer whose subscription is refused at start-up keeps trying and consumes once RabbitMQ accepts it,
// and a consumer whose channel RabbitMQ closes reconnects and consumes again instead of staying connected but deaf.
// Both failed on the stock adapter: the first node did not start, the second never consumed again.
import crypto from "crypto";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { createTestBroker } from "../helpers/broker";
import { deleteRabbitObjects, withAmqp } from "../helpers/rabbit";
import { waitUntil } from "../helpers/wait";
import { DEMO_BATCH_TABLES_SQL } from "../fixtures/services/demo-batch/demo-batch.service";

jest.setTimeout(60_000);

const FIXTURES_DIR = "test/fixtures/services";
const CHANNEL = "demo-batch.events";
const event = () => ({ type: "demo-batch.thing.happened", id: crypto.randomUUID(), time: new Date().toISOString() });

describeWith(["postgres", "rabbitmq"])("the AMQP channel adapter after channel errors", () => {
	const ns = uniqueNamespace("chanerr");
	const queue = `demo-batch.${ns}.${CHANNEL}`;
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let pool: pg.Pool;
	let broker: ServiceBroker;
	let stop: (() => Promise<void>) | undefined;

	const handled = async () =>
		(await pool.query("SELECT count(DISTINCT event_id)::int AS n FROM demo_batch_handled")).rows[0].n as number;
	const consumers = () => withAmqp(ch => ch.checkQueue(queue)).then(q => q.consumerCount);
	const send = () => (broker as any).sendToChannel(CHANNEL, event()) as Promise<void>;

	beforeAll(async () => {
		db = await createTestDatabase();
		pool = new pg.Pool({ connectionString: db.url, max: 2 });
		pool.on("error", () => undefined);
		await pool.query(DEMO_BATCH_TABLES_SQL);
	});

	afterAll(async () => {
		await stop?.();
		await pool?.end();
		await db?.drop();
		await deleteRabbitObjects([ns]).catch(() => undefined);
	});

	test("a subscription RabbitMQ refuses at start-up is retried, and events flow once it is accepted", async () => {
		// The group's queue declared with other arguments (classic, not quorum): RabbitMQ refuses the adapter's
		// declaration (406 PRECONDITION_FAILED) and closes its channel.
		await withAmqp(ch => ch.assertQueue(queue, { durable: true }));
		const t = await createTestBroker(
			{ DATABASE_URL: db.url, NAMESPACE: ns, SERVICES_DIR: FIXTURES_DIR, CHANNELS_URL: AMQP_URL },
			["test/fixtures/services/demo-batch/demo-batch.service.ts"]
		);
		broker = t.broker;
		stop = t.stop;
		expect(await consumers()).toBe(0);

		// The operator removes the conflicting queue; the adapter's next attempt declares it as it should be.
		await withAmqp(ch => ch.deleteQueue(queue));
		await waitUntil(
			"the group's queue consumed",
			() => consumers().catch(() => 0),
			n => n === 1,
			30_000,
			200
		);
		expect(await withAmqp(ch => ch.checkQueue(queue))).toMatchObject({ consumerCount: 1 });
		await send();
		await waitUntil("the event handled", handled, n => n === 1);
	});

	test("a channel RabbitMQ closes under a running consumer: it reconnects and consumes again", async () => {
		const adapter = (broker as any).channelAdapter;
		const before = adapter.channel;
		// A channel error: RabbitMQ closes the channel (404 NOT_FOUND) and leaves the connection open.
		await expect(before.checkQueue(`${ns}.no-such-queue`)).rejects.toThrow(/404/);
		await waitUntil(
			"a new channel consuming the group's queue",
			async () => adapter.channel !== before && (await consumers()) === 1,
			ok => ok,
			30_000,
			200
		);
		await send();
		await waitUntil("the event handled", handled, n => n === 2);
		expect(await consumers()).toBe(1);
	});
});
