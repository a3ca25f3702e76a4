// RabbitMQ drops a message sent to an exchange with no queue bound, so producers declare every consumer group's
// queue before they publish. The groups come from the module manifests (lib/module.ts): each consuming module
// declares its own, and every producer reads all of them, whichever modules its process runs.
import amqp from "amqplib";
import { coalesceAmqpWrites } from "../amqp-writes";
import { consumerGroupsOf, ModuleManifest } from "../module";

// The options every party (adapter consumer, producer, dead-letter) declares with; they must match exactly.
// Quorum queues keep every message on disk, including the adapter's retries, which it republishes non-persistent.
export const QUEUE_OPTIONS = { durable: true, arguments: { "x-queue-type": "quorum" } };
export const EXCHANGE_OPTIONS = { durable: true };

export class AmqpTopology {
	private conn?: amqp.ChannelModel;
	private channel?: amqp.ConfirmChannel;
	private asserted = new Set<string>();

	constructor(
		private url: string,
		private prefix: string,
		private manifests: ModuleManifest[]
	) {}

	private async open(): Promise<amqp.ConfirmChannel> {
		if (this.channel) return this.channel;
		const conn = await amqp.connect(this.url, { noDelay: true });
		coalesceAmqpWrites(conn);
		conn.on("error", () => undefined);
		conn.on("close", () => this.reset());
		const channel = await conn.createConfirmChannel();
		channel.on("error", () => undefined);
		channel.on("close", () => this.reset());
		this.conn = conn;
		this.channel = channel;
		return channel;
	}

	private reset() {
		this.conn = undefined;
		this.channel = undefined;
		this.asserted.clear();
	}

	prefixed(name: string) {
		return this.prefix ? `${this.prefix}.${name}` : name;
	}

	// Exchange plus one bound queue per consumer group any module declares, once per connection.
	async ensure(channel: string) {
		if (this.asserted.has(channel)) return;
		const groups = consumerGroupsOf(this.manifests, channel);
		const ch = await this.open();
		const exchange = this.prefixed(channel);
		await ch.assertExchange(exchange, "fanout", EXCHANGE_OPTIONS);
		for (const group of groups) {
			const queue = `${group}.${exchange}`;
			await ch.assertQueue(queue, QUEUE_OPTIONS);
			await ch.bindQueue(queue, exchange, "");
		}
		this.asserted.add(channel);
	}

	// Publishes one message (an event, or a relay pass's events: lib/events/outbox.ts) to the channel's exchange;
	// resolves only once RabbitMQ confirms it has it (for a quorum queue: stored by a majority). The channel adapter's
	// own publish only writes to the socket, so a message in flight when the broker stops is lost while the outbox row
	// says "published". Call ensure(channel) first. The body is JSON, as the adapter's serializer writes it, so the
	// adapter's consumers read it unchanged.
	publish(channel: string, body: string, headers: Record<string, unknown>, timeoutMs = 10_000): Promise<void> {
		const ch = this.channel;
		if (!ch) return Promise.reject(new Error("AMQP channel is not open"));
		return new Promise<void>((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`no publisher confirm within ${timeoutMs} ms`)), timeoutMs);
			timer.unref?.();
			try {
				ch.publish(this.prefixed(channel), "", Buffer.from(body), { persistent: true, headers }, err => {
					clearTimeout(timer);
					if (err) reject(err);
					else resolve();
				});
			} catch (err) {
				clearTimeout(timer);
				reject(err);
			}
		});
	}

	async close() {
		const conn = this.conn;
		this.reset();
		if (conn) await conn.close().catch(() => undefined);
	}
}
