// The cluster's RabbitMQ transport. Moleculer's AMQP transporter with the broker's `disableBalancer`: each action has
// one queue (MOL-<namespace>.REQB.<action>) that every replica consumes, instead of the caller picking a node and
// writing to that node's own queue. A request is acked after its response has been sent, so when a replica dies
// (kill -9, OOM, lost host) RabbitMQ sees its connection close and gives the requests it held to another replica at
// once. With the built-in balancer they sat in the dead node's queue until the caller's timeout (10 s), and the Retry
// middleware sent them again; callers kept choosing the dead node until its heartbeats were missed.
//
// What this subclass changes in the stock transporter (moleculer 0.15.2):
// - A node that stops cancels its shared-queue consumers. Moleculer calls unsubscribeFromBalancedCommands when
//   stop() begins (with an empty service list), but the stock transporter does nothing there: a stopping node kept
//   taking requests and refused them as ServiceNotAvailable, left to the callers' retries. It also stops consumers
//   piling up, since Moleculer subscribes again on every change of the local services.
// - At-most-once actions: an action whose schema turns retries off (`retryPolicy: { enabled: false }`, e.g. a call
//   that reaches a paid upstream) is acked on receipt. A replica that dies loses such a call; it never runs twice.
// - Each delivery is acked on the channel it came from. The stock code acks on whatever channel is current: after a
//   reconnect that is a new channel where the delivery tag is unknown, and RabbitMQ closes it for good.
// - A request carries its caller's timeout as the message's expiration: one that nobody took in time is dropped by
//   RabbitMQ, not run later by a replica that comes back after its caller gave up.
// - The shared queues expire after the same time without consumers as the per-node queues (autoDeleteQueues,
//   2 minutes) instead of living forever.
// - A packet addressed to this node itself (a broadcast's local handlers, a call with its own nodeID) is handled in
//   process, as with the built-in balancer, instead of a round trip through RabbitMQ.
import { Middleware, ServiceBroker, Transporters } from "moleculer";

const PACKET_REQUEST = "REQ";
const PACKET_EVENT = "EVENT";

interface Delivery {
	content: Buffer;
	fields: { deliveryTag: number };
}
interface Consumer {
	channel: unknown;
	tag: string;
}

export class ClusterAmqpTransporter extends Transporters.AMQP {
	private consumers: Consumer[] = [];
	private subscribing = new Set<Promise<unknown>>();
	private subscriptions: Promise<unknown> = Promise.resolve();

	// One (re)subscription at a time: Moleculer starts one per local-service change and per INFO it sends.
	makeBalancedSubscriptions(): Promise<void> {
		const run = () => super.makeBalancedSubscriptions();
		const next = this.subscriptions.then(run, run);
		this.subscriptions = next.catch(() => undefined);
		return next;
	}

	async unsubscribeFromBalancedCommands(): Promise<void> {
		// Moleculer does not wait for the event subscriptions it starts: they have to finish before being cancelled.
		await Promise.allSettled([...this.subscribing]);
		const current = this.consumers.filter(c => c.channel === this.channel);
		this.consumers = [];
		await Promise.all(current.map(c => this.channel.cancel(c.tag).catch((err: Error) => this.logger.warn(`AMQP consumer ${c.tag} not cancelled:`, err.message))));
	}

	subscribeBalancedRequest(action: string): Promise<void> {
		const queue = `${this.prefix}.${PACKET_REQUEST}B.${action}`;
		// Expiring like the per-node queues, unlike the stock balanced ones.
		return this.consumeShared(queue, this._getQueueOptions(PACKET_REQUEST, false), PACKET_REQUEST, this.atMostOnce(action));
	}

	subscribeBalancedEvent(event: string, group: string): Promise<void> {
		const queue = `${this.prefix}.${PACKET_EVENT}B.${group}.${event}`;
		return this.consumeShared(queue, this._getQueueOptions(PACKET_EVENT + "LB", true), PACKET_EVENT, false);
	}

	send(topic: string, data: Buffer, meta: Record<string, any>): Promise<void> {
		const packet = meta.packet;
		const timeout = packet?.type === PACKET_REQUEST ? packet.payload.timeout : 0;
		if (!(timeout > 0) || !this.channel) return super.send(topic, data, meta);
		// Requests always go to a queue (shared, or a node's own when the caller named the node).
		this.channel.sendToQueue(topic, data, { ...this.opts.messageOptions, expiration: String(Math.ceil(timeout)) });
		return Promise.resolve();
	}

	publish(packet: any): Promise<void> {
		if (packet.target !== this.nodeID) return super.publish(packet);
		packet.payload.ver = this.broker.PROTOCOL_VERSION;
		packet.payload.sender = this.nodeID;
		const handle = (this as unknown as { messageHandler: (cmd: string, packet: unknown) => unknown }).messageHandler;
		return Promise.resolve(handle(packet.type, packet)).then(() => undefined);
	}

	private atMostOnce(action: string): boolean {
		const local = this.broker.registry.getActionEndpoints(action)?.localEndpoints ?? [];
		return local.some((ep: any) => ep.action?.retryPolicy?.enabled === false);
	}

	private consumeShared(queue: string, queueOptions: Record<string, any>, cmd: string, ackOnReceipt: boolean): Promise<void> {
		const channel = this.channel;
		if (!channel) return Promise.resolve();
		const settle = (msg: Delivery, ok: boolean) => {
			try {
				if (ok) channel.ack(msg);
				else channel.nack(msg);
			} catch (err: any) {
				// The channel closed meanwhile: RabbitMQ has already given the message to another consumer.
				this.logger.debug("AMQP delivery not settled (its channel is closed):", err.message);
			}
		};
		const onMessage = (msg: Delivery | null) => {
			// null: RabbitMQ cancelled the consumer (the queue was deleted); the next subscription declares it again.
			if (!msg) return this.logger.warn(`AMQP consumer of ${queue} cancelled by the server.`);
			if (ackOnReceipt) settle(msg, true);
			const result: any = this.receive(cmd, msg.content);
			if (ackOnReceipt) return result;
			if (!result || typeof result.then !== "function") return settle(msg, true);
			return result.then(
				() => settle(msg, true),
				(err: Error) => {
					this.logger.error("Message handling error.", err);
					settle(msg, false);
				}
			);
		};
		const p: Promise<void> = channel
			.assertQueue(queue, queueOptions)
			.then(() => channel.consume(queue, onMessage, this.opts.consumeOptions))
			.then(({ consumerTag }: { consumerTag: string }) => void this.consumers.push({ channel, tag: consumerTag }));
		this.subscribing.add(p);
		return p.finally(() => this.subscribing.delete(p));
	}
}

// Where a call goes under `disableBalancer`:
// - an action this node has is called in process, as the built-in balancer's preferLocal does. Otherwise every call
//   goes to the action's shared queue: a node would send its own health checks and its services' calls to each other
//   through RabbitMQ, or to another replica;
// - a call given an endpoint object instead of a name goes to the shared queue too: moleculer-web passes the endpoint
//   its own lookup picked (findNextActionEndpoint, the built-in balancer), and Moleculer would send the request to
//   that node's own queue, where it waits out the timeout if the node has died. A caller that wants one node names
//   it with `nodeID`.
export function ClusterCallRouting(): Middleware {
	let broker: ServiceBroker;
	const balancedCall = ServiceBroker.prototype.call;
	return {
		name: "ClusterCallRouting",
		created(b: ServiceBroker) {
			broker = b;
		},
		call(next: any) {
			return (target: any, params: unknown, opts: any = {}) => {
				const name: string | undefined = typeof target === "string" ? target : target?.action?.name;
				if (!name || (opts.nodeID != null && opts.nodeID !== broker.nodeID)) return next(target, params, opts);
				const list: any = broker.registry.getActionEndpoints(name);
				// The balanced path with preferLocal (moleculer.config.ts) picks this node's endpoint.
				if (list?.localEndpoints.some((ep: any) => ep.isAvailable)) return balancedCall.call(broker, name, params as any, opts);
				return next(name, params, opts);
			};
		}
	} as unknown as Middleware;
}
