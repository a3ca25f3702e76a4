// RabbitMQ as the tests see it: queue depths, and removal of what one test's namespaces created.
import { execFile } from "child_process";
import { promisify } from "util";
import amqp from "amqplib";
import { AMQP_URL } from "./infra";

const run = promisify(execFile);

export async function withAmqp<T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> {
	const conn = await amqp.connect(AMQP_URL);
	conn.on("error", () => undefined);
	try {
		const ch = await conn.createChannel();
		ch.on("error", () => undefined);
		return await fn(ch);
	} finally {
		await conn.close().catch(() => undefined);
	}
}

// Ready messages in a queue; rejects if the queue does not exist.
export const queueDepth = (queue: string) => withAmqp(ch => ch.checkQueue(queue)).then(q => q.messageCount);
export const queueExists = (queue: string) =>
	queueDepth(queue).then(
		() => true,
		() => false
	);

// Every queue and exchange whose name contains one of our namespaces (channels, dead letters, transporter).
export async function deleteRabbitObjects(namespaces: string[]) {
	const list = async (what: "list_queues" | "list_exchanges") =>
		(await run("rabbitmqctl", ["-q", what, "name", "--no-table-headers"], { timeout: 30_000 })).stdout
			.split("\n")
			.map(s => s.trim())
			.filter(name => name && namespaces.some(ns => name.includes(ns)));
	const queues = await list("list_queues");
	const exchanges = await list("list_exchanges");
	await withAmqp(async ch => {
		for (const q of queues) await ch.deleteQueue(q);
		for (const e of exchanges) await ch.deleteExchange(e);
	});
}
