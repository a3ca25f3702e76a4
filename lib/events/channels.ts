// @moleculer/channels set-up: the AMQP adapter tuned for durability in cluster mode, the in-process adapter embedded.
// The package's type declarations do not describe its callable default export.
const { Middleware: ChannelsMiddleware, Adapters } = require("@moleculer/channels") as {
	Middleware: (opts: unknown) => any;
	Adapters: any;
};
import type { Config } from "../config";
import { EXCHANGE_OPTIONS, QUEUE_OPTIONS } from "./topology";

// The stock AMQP adapter, with what it gets wrong when the connection to RabbitMQ drops:
// - it acks (or re-publishes) a message on whatever channel is current when its handler ends. If the connection
//   dropped meanwhile, that is the closed channel: the throw escapes as an unhandled rejection and kills the process.
//   If it already reconnected, it is the new channel, where the delivery tag is unknown: RabbitMQ closes that channel
//   and the node neither consumes nor publishes again. So each delivery is settled on the channel it came from, and a
//   failure to settle is only logged: RabbitMQ redelivers the unacked message and EventsMixin's de-duplication
//   absorbs the repeat.
// - on reconnect it subscribes each channel again and prefixes the dead-letter queue and exchange names a second
//   time, so dead letters go to a new queue nobody watches. Each subscription starts from the names as declared.
// - it reconnects only when the connection closes. When RabbitMQ closes the AMQP *channel* (any channel error), the
//   node stayed connected but deaf: it consumed nothing more. So a channel closed by the server closes the connection,
//   and the adapter's reconnect opens both again and subscribes every channel anew (as lib/transporter.ts does).
// - a subscription that failed (at start-up, or on a reconnect) was never tried again: at start-up the node failed to
//   start, on a reconnect the channel was silently dropped. It is retried with back-off until it succeeds or the
//   service stops, and each failure is logged with RabbitMQ's reason.
class AmqpAdapter extends Adapters.AMQP {
	constructor(opts: unknown) {
		super(opts);
	}

	async tryConnect() {
		await super.tryConnect();
		const { connection, channel } = this;
		channel.on("close", () => {
			if (this.stopping || this.connection !== connection) return;
			this.logger.warn("AMQP channel closed by the server; closing the connection to reconnect.");
			connection.close().catch(() => undefined);
		});
	}

	// A channel with its own maxInFlight (a batched consumer) gets it as its consumer's prefetch: the stock adapter
	// sets one prefetch for the whole AMQP channel. RabbitMQ applies a prefetch to consumers started after it, so
	// subscriptions run one at a time, each with its own, then the default is restored.
	private subscribing: Promise<unknown> = Promise.resolve();

	subscribe(chan: any) {
		return this.subscribeOnce(chan, 0);
	}

	private subscribeOnce(chan: any, attempt: number): Promise<unknown> {
		chan.declaredDeadLettering ??= { ...chan.deadLettering };
		chan.deadLettering = { ...chan.declaredDeadLettering };
		const own = chan.maxInFlight != null && chan.maxInFlight !== this.opts.maxInFlight;
		const run = async () => {
			if (own) await this.channel.prefetch(chan.maxInFlight);
			try {
				return await super.subscribe(chan);
			} finally {
				if (own) await this.channel.prefetch(this.opts.maxInFlight).catch(() => undefined);
			}
		};
		const done = this.subscribing.then(run, run);
		this.subscribing = done.catch(() => undefined);
		return done.catch((err: Error) => this.retrySubscribe(chan, err, attempt));
	}

	private retrySubscribe(chan: any, err: Error, attempt: number) {
		if (this.stopping || chan.unsubscribing) throw err;
		// Not subscribed any more: a reconnect in the meantime must not count it as subscribed.
		this.subscriptions.delete(chan.id);
		const delay = Math.min(30_000, 500 * 2 ** attempt);
		this.logger.error(
			`Subscribing to '${chan.name}' (group '${chan.group}') failed: ${err.message}. Retrying in ${delay} ms.`
		);
		setTimeout(() => {
			if (this.stopping || chan.unsubscribing || this.subscriptions.has(chan.id)) return;
			this.subscribeOnce(chan, attempt + 1).catch(() => undefined);
		}, delay).unref();
	}

	createConsumerHandler(chan: unknown) {
		const settle = super.createConsumerHandler;
		return (msg: unknown) => {
			const pinned = Object.create(this, { channel: { value: this.channel } });
			return settle
				.call(
					pinned,
					chan
				)(msg)
				.catch((err: Error) =>
					this.logger.warn("AMQP message left unsettled (RabbitMQ redelivers it):", err.message)
				);
		};
	}
}

export function channelsMiddleware(config: Config) {
	const adapter = config.channelsUrl
		? new AmqpAdapter({
				amqp: {
					url: config.channelsUrl,
					socketOptions: { noDelay: true },
					queueOptions: QUEUE_OPTIONS,
					exchangeOptions: EXCHANGE_OPTIONS,
					messageOptions: { persistent: true },
					// Publishing to a missing exchange closes the AMQP channel: always assert it first.
					publishAssertExchange: { enabled: true, exchangeOptions: EXCHANGE_OPTIONS }
				},
				maxInFlight: config.channelsMaxInFlight,
				maxRetries: config.channelsMaxRetries
			})
		: { type: "Fake", options: { maxInFlight: config.channelsMaxInFlight } };
	return ChannelsMiddleware({ adapter } as any);
}
