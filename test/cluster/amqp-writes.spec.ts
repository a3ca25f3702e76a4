// AMQP frames sent in one turn of the event loop leave in one socket write (lib/amqp-writes.ts), on real RabbitMQ:
// the messages all arrive, in order and intact, and the transporter's and the outbox publisher's connections are the
// ones coalesced. Socket writes are counted at the socket (its _write and _writev: one system call each).
import amqp from "amqplib";
import { ServiceBroker } from "moleculer";
import type { Socket } from "net";
import { describeWith, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { deleteRabbitObjects } from "../helpers/rabbit";
import { clusterBrokerOptions } from "../helpers/cluster";
import { coalesceAmqpWrites } from "../../lib/amqp-writes";
import { AmqpTopology } from "../../lib/events/topology";

// Counts the system-call-level writes of the socket under an amqplib connection model.
function countWrites(model: unknown): { writes: number } {
	const socket = (model as { connection: { stream: Socket } }).connection.stream as Socket & Record<string, any>;
	const counter = { writes: 0 };
	for (const name of ["_write", "_writev"]) {
		const original = socket[name];
		socket[name] = function (this: Socket, ...args: unknown[]) {
			counter.writes++;
			return original.apply(this, args);
		};
	}
	return counter;
}

describeWith(["rabbitmq"])("AMQP frames written once per turn of the event loop", () => {
	const NAMESPACE = uniqueNamespace("amqpw");
	const N = 60;

	afterAll(() => deleteRabbitObjects([NAMESPACE]));

	// Publishes N messages in one turn on a fresh connection and reads them back.
	async function publishBurst(coalesce: boolean) {
		const conn = await amqp.connect(AMQP_URL, { noDelay: true });
		try {
			if (coalesce) coalesceAmqpWrites(conn);
			const ch = await conn.createChannel();
			const queue = `${NAMESPACE}.burst.${coalesce}`;
			await ch.assertQueue(queue, { exclusive: true });
			const received: string[] = [];
			const all = new Promise<void>(resolve =>
				ch.consume(
					queue,
					msg => {
						received.push(msg!.content.toString());
						if (received.length === N) resolve();
					},
					{ noAck: true }
				)
			);
			const counter = countWrites(conn);
			for (let i = 0; i < N; i++) ch.sendToQueue(queue, Buffer.from(`message ${i} ${"x".repeat(i * 10)}`));
			await all;
			return { writes: counter.writes, received };
		} finally {
			await conn.close().catch(() => undefined);
		}
	}

	it("sends a burst of messages in one write, and every one arrives in order and intact", async () => {
		const coalesced = await publishBurst(true);
		const expected = Array.from({ length: N }, (_, i) => `message ${i} ${"x".repeat(i * 10)}`);
		expect(coalesced.received).toEqual(expected);
		expect(coalesced.writes).toBeLessThanOrEqual(2);
		// Without it amqplib writes each message on its own: the count above is the change, not chance.
		const plain = await publishBurst(false);
		expect(plain.received).toEqual(expected);
		expect(plain.writes).toBeGreaterThanOrEqual(N);
	});

	it("keeps back-pressure: a burst far over the socket's buffer arrives whole", async () => {
		const conn = await amqp.connect(AMQP_URL, { noDelay: true });
		try {
			coalesceAmqpWrites(conn);
			const ch = await conn.createChannel();
			const queue = `${NAMESPACE}.large`;
			await ch.assertQueue(queue, { exclusive: true });
			const count = 400; // 400 × 64 KiB: 25 MiB written in one turn
			let bytes = 0;
			let seen = 0;
			let inOrder = true;
			const all = new Promise<void>(resolve =>
				ch.consume(
					queue,
					msg => {
						bytes += msg!.content.length;
						if (msg!.content[0] !== seen++ % 256) inOrder = false;
						if (seen === count) resolve();
					},
					{ noAck: true }
				)
			);
			for (let i = 0; i < count; i++) ch.sendToQueue(queue, Buffer.alloc(64 * 1024, i % 256));
			await all;
			expect(bytes).toBe(count * 64 * 1024);
			expect(inOrder).toBe(true);
		} finally {
			await conn.close().catch(() => undefined);
		}
	});

	it("coalesces the transporter's connection: a burst of calls between two nodes leaves the caller in one write", async () => {
		const options = (id: string) => clusterBrokerOptions(NAMESPACE, `${id}-${NAMESPACE}`);
		const callee = new ServiceBroker({ ...options("callee"), logger: false });
		callee.createService({ name: "echo", actions: { hit: { visibility: "public", handler: ctx => ctx.params } } });
		const caller = new ServiceBroker({ ...options("caller"), logger: false });
		try {
			await Promise.all([callee.start(), caller.start()]);
			await caller.waitForServices(["echo"], 20_000);
			await caller.call("echo.hit", { n: -1 }); // connection warm: queues declared, consumers up
			const counter = countWrites((caller.transit as any).tx.connection);
			const answers = await Promise.all(Array.from({ length: 20 }, (_, n) => caller.call("echo.hit", { n })));
			expect(answers).toEqual(Array.from({ length: 20 }, (_, n) => ({ n })));
			// The 20 requests in one write (one each before), and any acks of the responses in a write per turn.
			expect(counter.writes).toBeLessThanOrEqual(3);
		} finally {
			await caller.stop();
			await callee.stop();
		}
	});

	it("coalesces the outbox publisher's connection: a batch of events is written at once and each is confirmed", async () => {
		const topology = new AmqpTopology(AMQP_URL, NAMESPACE, []);
		try {
			await topology.ensure("burst.events");
			const counter = countWrites((topology as any).conn);
			await Promise.all(
				Array.from({ length: N }, (_, i) =>
					topology.publish("burst.events", JSON.stringify({ i }), { "x-event-id": String(i) })
				)
			);
			expect(counter.writes).toBeLessThanOrEqual(2);
		} finally {
			await topology.close();
		}
	});
});
