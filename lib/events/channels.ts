// @moleculer/channels set-up: the AMQP adapter tuned for durability in cluster mode, the in-process adapter embedded.
// The package's type declarations do not describe its callable default export.
const { Middleware: ChannelsMiddleware, Adapters } = require("@moleculer/channels") as {
	Middleware: (opts: unknown) => any;
	Adapters: any;
};
import crypto from "crypto";
import { coalesceAmqpWrites } from "../amqp-writes";
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
		coalesceAmqpWrites(connection);
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

interface Waiter {
	payload: unknown;
	raw: { payload: unknown; headers?: Record<string, string> };
	done: (err?: unknown) => void;
}

// One consumer group's subscription: at most maxInFlight handlers at once, the rest wait their turn (no bound: the
// publisher waits for its events, so the queue holds at most what one relay pass sends).
class InProcessSubscription {
	private running = 0;
	private waiting: Waiter[] = [];
	private idle?: () => void;

	constructor(
		readonly chan: any,
		private adapter: InProcessAdapter
	) {}

	take(payload: unknown, raw: Waiter["raw"]): Promise<void> {
		return new Promise((resolve, reject) => {
			this.waiting.push({ payload, raw, done: err => (err === undefined ? resolve() : reject(err)) });
			this.next();
		});
	}

	private next() {
		while (this.running < this.chan.maxInFlight && this.waiting.length) {
			const w = this.waiting.shift()!;
			this.running++;
			const id = crypto.randomUUID();
			this.adapter.addChannelActiveMessages(this.chan.id, [id]);
			Promise.resolve()
				.then(() => this.chan.handler(w.payload, w.raw))
				.then(
					() => w.done(),
					(err: Error) => {
						this.adapter.logger.warn(
							`Handler of '${this.chan.name}' (group '${this.chan.group}') failed:`,
							err?.message
						);
						w.done(err ?? new Error("handler failed"));
					}
				)
				.finally(() => {
					this.adapter.removeChannelActiveMessages(this.chan.id, [id]);
					this.running--;
					this.next();
				});
		}
		if (!this.running && !this.waiting.length) this.idle?.();
	}

	// Resolves once the handlers in flight have ended; nothing new is started after unsubscribe.
	drained(): Promise<void> {
		this.waiting.splice(0).forEach(w => w.done(new Error(`'${this.chan.name}' is being unsubscribed`)));
		if (!this.running) return Promise.resolve();
		return new Promise(resolve => (this.idle = resolve));
	}
}

// Embedded mode's adapter. The stock in-process one ("Fake") emits a broker event and returns at once, and its
// bulkhead throws QueueIsFullError when more events wait than its queue holds: the event was gone, though the outbox
// had it marked published. Here publishing resolves once each subscribed group's handler has taken the event (in
// EventsMixin: handled, or failed once with its retries going on in the background), so the outbox relay waits for
// its consumers, a crash before that publishes it again (consumers de-duplicate), and nothing is ever dropped. A
// handler that fails rejects the publish: the relay retries the row later.
class InProcessAdapter extends Adapters.Base {
	private subscriptions = new Map<string, InProcessSubscription[]>();

	constructor(opts: unknown) {
		super(opts);
	}

	// Until the node has subscribed its consumers (the channels middleware connects and subscribes after the services
	// started, the relay among them), and once the broker is stopping (its services stop side by side), publishing is
	// refused: the relay keeps the row and publishes it later, where an event handed to no consumer would be marked
	// published and lost.
	async connect() {
		this.connected = true;
	}

	async disconnect() {
		this.connected = false;
	}

	async subscribe(chan: any) {
		chan.maxInFlight ??= this.opts.maxInFlight;
		const list = this.subscriptions.get(chan.name) ?? [];
		list.push(new InProcessSubscription(chan, this));
		this.subscriptions.set(chan.name, list);
		this.initChannelActiveMessages(chan.id, false);
	}

	async unsubscribe(chan: any) {
		if (chan.unsubscribing) return;
		chan.unsubscribing = true;
		const list = this.subscriptions.get(chan.name) ?? [];
		const sub = list.find(s => s.chan === chan);
		if (!sub) return;
		this.subscriptions.set(
			chan.name,
			list.filter(s => s !== sub)
		);
		await sub.drained();
		this.stopChannelActiveMessages(chan.id);
	}

	async publish(channelName: string, payload: unknown, opts: { headers?: Record<string, string> } = {}) {
		if (!this.connected || this.broker.stopping)
			throw new Error(`in-process channels are ${this.connected ? "stopping" : "not started yet"}`);
		const raw = { payload, headers: opts.headers };
		await Promise.all((this.subscriptions.get(channelName) ?? []).map(s => s.take(payload, raw)));
	}

	parseMessageHeaders(raw: { headers?: Record<string, string> }) {
		return raw.headers;
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
		: new InProcessAdapter({ maxInFlight: config.channelsMaxInFlight });
	return ChannelsMiddleware({ adapter } as any);
}
