// Publishes events straight to a namespace's channel exchange in RabbitMQ, as the outbox relay would (persistent,
// JSON, confirmed), with the "usage" group's queue declared first: for the usage module's cluster test and bench.
import amqp from "amqplib";
import { EXCHANGE_OPTIONS, QUEUE_OPTIONS } from "../../lib/events/topology";
import { AMQP_URL } from "../helpers/infra";

export const usageQueue = (ns: string) => `usage.${ns}.ai.events`;

export async function declareUsageQueue(ns: string, url = AMQP_URL) {
	const conn = await amqp.connect(url);
	try {
		const ch = await conn.createChannel();
		await ch.assertExchange(`${ns}.ai.events`, "fanout", EXCHANGE_OPTIONS);
		await ch.assertQueue(usageQueue(ns), QUEUE_OPTIONS);
		await ch.bindQueue(usageQueue(ns), `${ns}.ai.events`, "");
	} finally {
		await conn.close();
	}
}

// Each event once, in order, in chunks of confirmed publishes; returns when RabbitMQ has them all. `perMessage` > 1
// packs that many events to a message (a JSON array), as the relay does with a pass's events.
export async function publishEvents(
	ns: string,
	events: object[],
	url = AMQP_URL,
	onPublished?: (i: number) => void,
	perMessage = 1
) {
	const conn = await amqp.connect(url, { noDelay: true });
	try {
		const ch = await conn.createConfirmChannel();
		for (let i = 0; i < events.length; i += 1000) {
			const chunk = events.slice(i, i + 1000);
			for (let j = 0; j < chunk.length; j += perMessage) {
				const body = perMessage === 1 ? chunk[j] : chunk.slice(j, j + perMessage);
				ch.publish(`${ns}.ai.events`, "", Buffer.from(JSON.stringify(body)), { persistent: true, headers: {} });
			}
			await ch.waitForConfirms();
			onPublished?.(Math.min(i + 1000, events.length));
		}
	} finally {
		await conn.close();
	}
}
