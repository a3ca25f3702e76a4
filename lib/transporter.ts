// The cluster's RabbitMQ transport. Moleculer's AMQP transporter with the broker's `disableBalancer`: each action has
// one queue (MOL-<namespace>.REQB.<action>) that every replica consumes, instead of the caller picking a node and
// writing to that node's own queue. A request is acked after its response has been sent, so when a replica dies
// (kill -9, OOM, a crash) RabbitMQ sees its connection close and gives the requests it held to another replica at
// once. With the built-in balancer they sat in the dead node's queue until the caller's timeout (10 s), and the Retry
// middleware sent them again; callers kept choosing the dead node until its heartbeats were missed. (A host that
// vanishes without closing its connections is noticed by AMQP heartbeats, 60 s by default: `?heartbeat=10` in
// TRANSPORTER shortens that; until then the caller's timeout and the Retry middleware cover it, as before.)
//
// What this subclass changes in the stock transporter (moleculer 0.15.2):
// - It keeps one consumer per shared queue and cancels those of services that are gone. Moleculer re-subscribes on
//   every change of the local services, and the stock transporter never cancels anything: consumers piled up, and a
//   node that was stopping (Moleculer re-subscribes with an empty service list when stop() begins) kept taking
//   requests and refused them as ServiceNotAvailable, left to the callers' retries.
// - A node's INFO naming an action goes out only once the action's queue is consumed (see publish).
// - At-most-once actions (see atMostOnce): their shared queues, should a caller use them, are consumed without acks,
//   so a replica that dies loses such a call rather than another running it again. ClusterCallRouting sends these
//   calls to one node's own queue instead.
// - Each delivery is acked on the channel it came from (also on the node's own request queue). The stock code acks
//   on whatever channel is current: after a reconnect that is a new channel where the delivery tag is unknown, and
//   RabbitMQ closes it for good.
// - Events: `emit` goes to one queue per consumer group (EVENTB), handed out by RabbitMQ and acked after the handler;
//   `broadcast` goes to every node's own queue, as before.
// - A request carries its caller's timeout as the message's expiration: one that nobody took in time is dropped by
//   RabbitMQ, not run later by a replica that comes back after its caller gave up.
// - The shared queues expire after the same time without consumers as the per-node queues (autoDeleteQueues,
//   2 minutes) instead of living forever.
// - A packet addressed to this node itself (a broadcast's local handlers, a call with its own nodeID) is handled in
//   process, as with the built-in balancer, instead of a round trip through RabbitMQ.
// - A channel that RabbitMQ closes (any channel error: a refused declaration, an unknown delivery tag) takes the
//   connection down with it, so that Moleculer reconnects. The stock transporter only reconnects on a lost
//   connection: it set the channel to null and the node stayed connected but deaf, sending nothing and taking no
//   requests, until other nodes dropped it for missed heartbeats. Meanwhile a packet sent into the closing channel
//   threw from a heartbeat timer, an uncaught exception.
// - A node that reconnected sends a heartbeat at once (see onConnected).
// - What it sends in one turn of the event loop leaves in one socket write (lib/amqp-writes.ts).
import { Middleware, ServiceBroker, Transporters } from "moleculer";
import { coalesceAmqpWrites } from "./amqp-writes";

// An action that must never run twice: it reaches a paid or side-effecting system outside the platform (`external:
// true`, lib/external-calls.ts) or its schema turns retries off. Its calls are not handed to another replica.
export function atMostOnce(action: { external?: boolean; retryPolicy?: { enabled?: boolean } } | undefined): boolean {
	return action?.external === true || action?.retryPolicy?.enabled === false;
}

const PACKET_REQUEST = "REQ";
const PACKET_EVENT = "EVENT";
const PACKET_INFO = "INFO";

interface Delivery {
	content: Buffer;
}
interface SharedQueue {
	queue: string;
	cmd: string;
	queueOptions: Record<string, unknown>;
	atMostOnce: boolean;
}
interface NodeService {
	name: string;
	actions?: Record<string, unknown>;
	events?: Record<string, { group?: string }>;
}

export class ClusterAmqpTransporter extends Transporters.AMQP {
	// Shared queue → its consumer on this node.
	private consumers = new Map<string, { channel: unknown; tag: string }>();
	private syncing: Promise<unknown> = Promise.resolve();

	// Moleculer calls this on every change of the local services (an empty list when stop() begins).
	makeBalancedSubscriptions(): Promise<void> {
		return this.sync(this.broker.getLocalNodeInfo().services as unknown as NodeService[], true);
	}

	unsubscribeFromBalancedCommands(): Promise<void> {
		return this.sync([], true);
	}

	publish(packet: any): Promise<void> {
		if (packet.target === this.nodeID) {
			packet.payload.ver = this.broker.PROTOCOL_VERSION;
			packet.payload.sender = this.nodeID;
			const self = this as unknown as { messageHandler: (cmd: string, packet: unknown) => unknown };
			return Promise.resolve(self.messageHandler(packet.type, packet)).then(() => undefined);
		}
		// Never tell another node about an action before its queue is consumed here: Moleculer answers other nodes'
		// DISCOVER with the services as soon as they are registered, and subscribes only a second later (its
		// debounced service-change handler); a request sent meanwhile went to a queue that did not exist yet, which
		// RabbitMQ drops without a word.
		if (packet.type === PACKET_INFO && packet.payload.services?.length)
			return this.sync(packet.payload.services, false).then(() => super.publish(packet));
		return super.publish(packet);
	}

	// Moleculer passes its reconnect callback, which the typings leave out.
	connect(...args: unknown[]): Promise<void> {
		const connect = super.connect as (...a: unknown[]) => Promise<void>;
		return connect.apply(this, args).then(() => {
			coalesceAmqpWrites(this.connection);
			this.watchChannel();
		});
	}

	// Other nodes drop a node whose last heartbeat is older than heartbeatTimeout, and the INFO sent on reconnecting
	// does not count as one: a node back after Moleculer's 5 s back-off was dropped again, its services gone from the
	// callers' registries, in the seconds until its next heartbeat. It sends one at once.
	onConnected(wasReconnect?: boolean): Promise<any> {
		const done = super.onConnected(wasReconnect);
		if (wasReconnect) void this.broker.registry.discoverer.sendHeartbeat();
		return done;
	}

	// After a channel error the connection is closed too, and Moleculer's reconnect (5 s later) opens both again and
	// subscribes everything anew; the requests this node held go back to their queues when the connection closes.
	private watchChannel(): void {
		const channel = this.channel;
		const connection = this.connection;
		if (!channel || !connection) return;
		let cause = "";
		channel.on("error", (err: Error) => (cause = err.message));
		channel.on("close", () => {
			if (this.channelDisconnecting || this.connection !== connection) return;
			this.logger.warn(`AMQP channel closed by the server (${cause || "no reason given"}); reconnecting.`);
			connection.close().catch(() => undefined);
		});
	}

	send(topic: string, data: Buffer, meta: Record<string, any>): Promise<void> {
		const packet = meta.packet;
		const timeout = packet?.type === PACKET_REQUEST ? packet.payload.timeout : 0;
		try {
			if (!(timeout > 0) || !this.channel) return super.send(topic, data, meta);
			// Requests always go to a queue (shared, or a node's own when the caller named the node).
			this.channel.sendToQueue(topic, data, {
				...this.opts.messageOptions,
				expiration: String(Math.ceil(timeout))
			});
			return Promise.resolve();
		} catch (err) {
			// amqplib throws at once when the channel is closing (see watchChannel). A request fails to its caller, who
			// may retry it; anything else (a heartbeat, an INFO) is lost like any packet sent into a dropped link.
			if (packet?.type === PACKET_REQUEST) return Promise.reject(err);
			this.logger.debug(`AMQP ${packet?.type ?? "packet"} not sent:`, (err as Error).message);
			return Promise.resolve();
		}
	}

	// Consumes the shared queues of `services` that are not consumed yet (and with `exclusive`, stops consuming the
	// others), one sync at a time. After a reconnect every queue is consumed again on the new channel.
	private sync(services: NodeService[], exclusive: boolean): Promise<void> {
		const run = async () => {
			const channel = this.channel;
			if (!channel) return;
			for (const [queue, c] of this.consumers) if (c.channel !== channel) this.consumers.delete(queue);
			const wanted = this.sharedQueues(services);
			if (exclusive) {
				const keep = new Set(wanted.map(w => w.queue));
				const drop = [...this.consumers].filter(([queue]) => !keep.has(queue));
				for (const [queue] of drop) this.consumers.delete(queue);
				const warn = (queue: string, err: Error) => this.logger.warn(`AMQP consumer of ${queue}:`, err.message);
				await Promise.all(drop.map(([q, c]) => channel.cancel(c.tag).catch((err: Error) => warn(q, err))));
			}
			await Promise.all(wanted.filter(w => !this.consumers.has(w.queue)).map(w => this.consume(channel, w)));
		};
		const next = this.syncing.then(run, run);
		this.syncing = next.catch(() => undefined);
		return next;
	}

	private sharedQueues(services: NodeService[]): SharedQueue[] {
		const list: SharedQueue[] = [];
		for (const svc of services) {
			for (const action of Object.keys(svc.actions ?? {}))
				list.push({
					queue: `${this.prefix}.${PACKET_REQUEST}B.${action}`,
					cmd: PACKET_REQUEST,
					// Expiring like the per-node queues, unlike the stock balanced ones.
					queueOptions: this._getQueueOptions(PACKET_REQUEST, false),
					atMostOnce: this.isAtMostOnce(action)
				});
			for (const [event, def] of Object.entries(svc.events ?? {}))
				list.push({
					queue: `${this.prefix}.${PACKET_EVENT}B.${def.group || svc.name}.${event}`,
					cmd: PACKET_EVENT,
					queueOptions: this._getQueueOptions(PACKET_EVENT + "LB", true),
					atMostOnce: false
				});
		}
		return list;
	}

	private isAtMostOnce(action: string): boolean {
		const local = this.broker.registry.getActionEndpoints(action)?.localEndpoints ?? [];
		return local.some((ep: any) => atMostOnce(ep.action));
	}

	// The stock handler for a node's own queues (requests named to this node, responses, broadcasts), with requests
	// settled on the channel they came from like the shared queues' deliveries.
	_consumeCB(cmd: string, needAck = false): (msg: any) => void | Promise<void> {
		return needAck ? this.handler(this.channel, cmd, true) : super._consumeCB(cmd, needAck);
	}

	// Hands a delivery to Moleculer; with `ack`, acks it on `channel` once handled (for a request: once answered).
	private handler(channel: any, cmd: string, ack: boolean, onCancel?: () => void) {
		const settle = (msg: Delivery, ok: boolean) => {
			try {
				if (ok) channel.ack(msg);
				else channel.nack(msg);
			} catch (err: any) {
				// The channel closed meanwhile: RabbitMQ has already given the message to another consumer.
				this.logger.debug("AMQP delivery not settled (its channel is closed):", err.message);
			}
		};
		return (msg: Delivery | null) => {
			// null: RabbitMQ cancelled the consumer (its queue was deleted).
			if (!msg) return onCancel?.();
			const result: any = this.receive(cmd, msg.content);
			if (!ack) return result;
			if (!result || typeof result.then !== "function") return settle(msg, true);
			return result.then(
				() => settle(msg, true),
				(err: Error) => {
					this.logger.error("Message handling error.", err);
					settle(msg, false);
				}
			);
		};
	}

	private async consume(channel: any, { queue, cmd, queueOptions, atMostOnce }: SharedQueue): Promise<void> {
		const onCancel = () => {
			// The next sync declares the queue again.
			if (this.consumers.get(queue)?.channel === channel) this.consumers.delete(queue);
			this.logger.warn(`AMQP consumer of ${queue} cancelled by the server.`);
		};
		await channel.assertQueue(queue, queueOptions);
		// noAck: RabbitMQ counts the message delivered once it is sent. An ack sent on receipt is not enough: the
		// process may die before amqplib writes it (or the kernel resets the socket on a kill and drops it).
		const options = { ...this.opts.consumeOptions, ...(atMostOnce ? { noAck: true } : {}) };
		const onMessage = this.handler(channel, cmd, !atMostOnce, onCancel);
		const { consumerTag } = await channel.consume(queue, onMessage, options);
		this.consumers.set(queue, { channel, tag: consumerTag });
	}
}

// Where a call goes under `disableBalancer`:
// - an action this node has is called in process, as the built-in balancer's preferLocal does. Otherwise every call
//   goes to the action's shared queue: a node would send its own health checks and its services' calls to each other
//   through RabbitMQ, or to another replica;
// - a call given an endpoint object instead of a name goes to the shared queue too: moleculer-web passes the endpoint
//   its own lookup picked (findNextActionEndpoint, the built-in balancer), and Moleculer would send the request to
//   that node's own queue, where it waits out the timeout if the node has died. A caller that wants one node names
//   it with `nodeID`;
// - a call of an at-most-once action goes to one node's own queue, picked by the built-in balancer, as before: if
//   that node dies the call must not run elsewhere, and it fails when the node is dropped from the registry (such
//   calls may have no timeout: in a shared queue they would wait for an answer forever).
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
				if (list?.localEndpoints.some((ep: any) => ep.isAvailable))
					return balancedCall.call(broker, name, params as any, opts);
				if (atMostOnce(list?.endpoints[0]?.action)) {
					const endpoint = broker.findNextActionEndpoint(name, opts);
					if (!(endpoint instanceof Error)) return next(endpoint, params, opts);
				}
				return next(name, params, opts);
			};
		}
	} as unknown as Middleware;
}
