// RabbitMQ's CPU per durable event, as the outbox publishes them: persistent, with publisher confirms, to a fanout
// exchange bound to one queue per consumer group (ai.events has three: usage, usage-limits, notifications), with a
// consumer per queue acking each delivery. Quorum queues (the platform's, lib/events/topology.ts) against classic
// durable ones, one after the other, the events published in batches as the relay does.
// Also, events packed several to a message (`pack`), what a relay that sent a batch's events of one channel together
// would cost. `node --import tsx bench/event-queues.ts`; BENCH_EQ_EVENTS (5000), BENCH_EQ_GROUPS (3), BENCH_EQ_BATCH
// (100), BENCH_EQ_PACK (3: the events of one completion).
import crypto from "crypto";
import amqp from "amqplib";
import { cpuMeter, RABBITMQ } from "./cpu";

const URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const EVENTS = Number(process.env.BENCH_EQ_EVENTS ?? 5000);
const GROUPS = Number(process.env.BENCH_EQ_GROUPS ?? 3);
const BATCH = Number(process.env.BENCH_EQ_BATCH ?? 100);
const PACK = Number(process.env.BENCH_EQ_PACK ?? 3);
// An ai.usage.recorded event's size, about.
const EVENT = { id: crypto.randomUUID(), type: "ai.usage.recorded", pad: "x".repeat(500) };

async function run(kind: "quorum" | "classic", pack: number) {
	const payload = Buffer.from(JSON.stringify(pack === 1 ? EVENT : Array(pack).fill(EVENT)));
	const messages = Math.ceil(EVENTS / pack);
	const conn = await amqp.connect(URL, { noDelay: true });
	const pub = await conn.createConfirmChannel();
	const sub = await conn.createChannel();
	await sub.prefetch(100);
	const prefix = `bench-eq-${crypto.randomBytes(3).toString("hex")}`;
	const exchange = `${prefix}.events`;
	await pub.assertExchange(exchange, "fanout", { durable: true });
	const args = kind === "quorum" ? { "x-queue-type": "quorum" } : {};
	let delivered = 0;
	let allDelivered!: () => void;
	const done = new Promise<void>(r => (allDelivered = r));
	const queues: string[] = [];
	for (let g = 0; g < GROUPS; g++) {
		const q = `${prefix}.group${g}`;
		queues.push(q);
		await pub.assertQueue(q, { durable: true, arguments: args });
		await pub.bindQueue(q, exchange, "");
		await sub.consume(q, msg => {
			if (!msg) return;
			sub.ack(msg);
			if (++delivered === messages * GROUPS) allDelivered();
		});
	}
	const meter = cpuMeter({ rabbitmq: RABBITMQ });
	const started = performance.now();
	for (let sent = 0; sent < messages; sent += BATCH) {
		for (let i = 0; i < Math.min(BATCH, messages - sent); i++)
			pub.publish(exchange, "", payload, { persistent: true, messageId: crypto.randomUUID() });
		await pub.waitForConfirms();
	}
	await done;
	const ms = performance.now() - started;
	const { cpuUs } = meter.stop();
	for (const q of queues) await pub.deleteQueue(q);
	await pub.deleteExchange(exchange);
	await conn.close();
	console.log(
		`${kind.padEnd(8)} ${pack} per message, ${EVENTS} events × ${GROUPS} queues in ${Math.round(ms)} ms: RabbitMQ ${Math.round(cpuUs.rabbitmq / EVENTS)} µs CPU per event`
	);
}

async function main() {
	for (let round = 0; round < 2; round++)
		for (const [kind, pack] of [
			["quorum", 1],
			["classic", 1],
			["quorum", PACK]
		] as const)
			await run(kind, pack);
}
main().catch(err => {
	console.error(err);
	process.exit(1);
});
