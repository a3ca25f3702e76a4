// EventsMixin: publish durable events with a database change, and consume channels idempotently.
//   publishing: `await this.withEvents(async (tx, publish) => { ...writes...; publish("x.y.z", data) })`
//     -> events go to the outbox in the same transaction and are relayed after commit.
//   consuming:  `channels: { "ai.events": { handler(event, tx) {...} } }`
//     -> each event id is handled once per consumer group (recorded in processed_events in the handler's
//        transaction); failures are retried with back-off, then dead-lettered. The service's module declares each
//        channel and group it consumes in its manifest (`consumes` in services/<module>/<module>.module.ts), or the
//        service does not start: producers in other processes read the manifests to declare the groups' queues.
//     `channels: { "*": { group, handler } }` reads every channel the module's `consumesAll` stands for.
//   batched:    `channels: { "ai.events": { batch: { max: 500, ms: 20 }, handler(events, tx) {...} } }`
//     -> the handler gets a batch's fresh events (de-duplicated in one statement) in one transaction; each message
//        is acknowledged after its batch commits, and a failed batch fails each of its messages (see Batcher).
//   only some types: `channels: { "ai.events": { types: ["ai.usage.recorded"] satisfies EventTypeOf<"ai.events">[],
//        handler(event, tx) {...} } }` (batched or not)
//     -> an event of another type is acknowledged at once: no transaction, no processed_events row, no handler call.
//   A message holds one event, or several (the relay sends a pass's events of a channel as one message): a handler
//   gets one event per call (or one batch) all the same; a message is settled when all its events are.
import path from "path";
import { Errors, Service, ServiceBroker } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { getConfig } from "../lib/config";
import { acquireDb, getDb, releaseDb, Queryable } from "../lib/db";
import { OutboxRelay, makeEvent, writeManyToOutbox } from "../lib/events/outbox";
import { AmqpTopology } from "../lib/events/topology";
import { channelsConsumedBy, loadManifests, manifestOfServiceFile, ModuleManifest, SERVICES_DIR } from "../lib/module";
import { exponentialDelay } from "../lib/resilience";
import type { EventData, EventType, PlatformEvent } from "../lib/events/types";

export type Publish = <T extends EventType>(type: T, data: EventData<T>) => Extract<PlatformEvent, { type: T }>;

// One relay per broker, shared by every service of the process that publishes. The entry is registered before
// the first await, so services starting side by side share it instead of each starting (and leaking) their own.
const relays = new WeakMap<ServiceBroker, { relay: Promise<OutboxRelay>; users: number }>();

function startRelay(broker: ServiceBroker, manifests: ModuleManifest[]): Promise<OutboxRelay> {
	const existing = relays.get(broker);
	if (existing) {
		existing.users++;
		return existing.relay;
	}
	const relay = (async () => {
		const config = getConfig();
		const db = await acquireDb();
		const url = config.channelsUrl;
		const topology = url ? new AmqpTopology(url, broker.namespace, manifests) : undefined;
		const started = new OutboxRelay(broker, db, topology);
		started.start();
		return started;
	})();
	relays.set(broker, { relay, users: 1 });
	relay.catch(() => relays.delete(broker));
	return relay;
}

async function stopRelay(broker: ServiceBroker) {
	const entry = relays.get(broker);
	if (!entry) return;
	if (--entry.users > 0) return;
	relays.delete(broker);
	await (await entry.relay).stop();
	await releaseDb();
}

export function retryDelay(attempt: number): number {
	return exponentialDelay(getConfig().channelsRetryBaseMs, 30_000)(attempt);
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

// `afterCommit(fn)`: fn runs once the handler's transaction has committed (a live push of what it stored).
export type AfterCommit = (fn: () => void) => void;
type ChannelHandler = (
	this: Service,
	event: any,
	tx: Queryable,
	afterCommit: AfterCommit
) => Promise<unknown> | unknown;
type BatchHandler = (
	this: Service,
	events: any[],
	tx: Queryable,
	afterCommit: AfterCommit
) => Promise<unknown> | unknown;

// A batched channel (`batch: { max, ms }`): its handler gets up to `max` fresh events at once, collected for at most
// `ms` while the consumer is idle (and, under load, whatever arrived during the previous batch's transaction).
export interface BatchOptions {
	max: number;
	ms: number;
	// Batches of one consumer in flight at once (default 1): a second overlaps the first's round trips to the database.
	concurrency?: number;
}

// A message holds one event, or a relay pass's events of its channel as a JSON array (lib/events/outbox.ts).
const eventsOf = (payload: unknown): any[] => (Array.isArray(payload) ? payload : [payload]);

interface Failure {
	event: any;
	err: unknown;
}

// One attempt at some of a message's events: the ones that failed, with their errors.
type Attempt = (events: any[], attempt: number) => Promise<Failure[]>;

// Runs each of a message's events: together, or one at a time in the message's order. One failing does not keep the
// others from being handled.
async function failuresOf(events: any[], run: (event: any) => Promise<unknown>, oneAtATime = false) {
	const failed: Failure[] = [];
	const attempt = (event: any) => run(event).catch(err => void failed.push({ event, err }));
	if (oneAtATime) for (const event of events) await attempt(event);
	else await Promise.all(events.map(attempt));
	return failed;
}

// At most n of a consumer's events handled at once, whichever messages they came in: a message may hold many.
class Slots {
	private waiting: (() => void)[] = [];

	constructor(private free: number) {}

	async run<T>(fn: () => Promise<T>): Promise<T> {
		if (this.free > 0) this.free--;
		else await new Promise<void>(resolve => this.waiting.push(resolve));
		try {
			return await fn();
		} finally {
			const next = this.waiting.shift();
			if (next) next();
			else this.free++;
		}
	}
}

// Runs one delivery of a message's events with the group's retry policy. Cluster: the AMQP adapter redelivers the
// message (counting attempts in a header) and dead-letters it after maxRetries, so this only backs off before
// rethrowing; the events a redelivery holds that were handled already are skipped by the de-duplication. Embedded:
// the in-process adapter neither retries nor dead-letters, so this does both, for each failed event.
async function deliver(
	svc: Service,
	group: string,
	channel: string,
	events: any[],
	raw: any,
	attemptOnce: Attempt,
	logged = false // the failure was already logged (a batch logs once for all its messages)
) {
	const config = getConfig();
	const amqpHeaders = raw?.properties?.headers;
	// Names the event: a message may hold many, and after its retries it is dead-lettered whole.
	const warn = (attempt: number, event: any, err: any) => {
		if (!logged)
			svc.logger.warn(
				`Handler of ${channel} failed (attempt ${attempt + 1}, event ${event?.id} ${event?.type}):`,
				err?.message
			);
	};
	if (amqpHeaders) {
		const attempt = Number(amqpHeaders["x-redelivered-count"] ?? 0);
		const failed = await attemptOnce(events, attempt);
		if (!failed.length) return;
		for (const f of failed) warn(attempt, f.event, f.err);
		if (attempt + 1 < config.channelsMaxRetries) await sleep(retryDelay(attempt));
		throw failed[0].err;
	}
	// The first attempt holds the publisher (the in-process adapter waits for it); the retries after a failure go on
	// in the background, so one failing event does not hold back every other one for its whole back-off.
	for (const { event, err } of await attemptOnce(events, 0)) {
		warn(0, event, err);
		if (config.channelsMaxRetries <= 1) await deadLetter(group, channel, event, err);
		else retryInBackground(svc, group, channel, event, attemptOnce, warn);
	}
}

function retryInBackground(
	svc: Service,
	group: string,
	channel: string,
	event: any,
	attemptOnce: Attempt,
	warn: (attempt: number, event: any, err: unknown) => void
) {
	const config = getConfig();
	const retries = (async () => {
		for (let attempt = 1; ; attempt++) {
			await sleep(retryDelay(attempt - 1));
			const [failed] = await attemptOnce([event], attempt);
			if (!failed) return;
			warn(attempt, event, failed.err);
			if (attempt + 1 >= config.channelsMaxRetries) return deadLetter(group, channel, event, failed.err);
		}
	})().catch(err =>
		svc.logger.error(
			`Retrying an event of ${channel} failed; it is neither handled nor dead-lettered:`,
			err?.message
		)
	);
	let mine = retrying.get(svc);
	if (!mine) retrying.set(svc, (mine = new Set()));
	const set = mine;
	set.add(retries);
	void retries.finally(() => set.delete(retries));
}

// Embedded: the retry chains still running, per service; its stop waits for them.
const retrying = new WeakMap<Service, Set<Promise<unknown>>>();

async function deadLetter(group: string, channel: string, payload: any, err: any) {
	const db = await getDb();
	await db.query(
		"INSERT INTO dead_letter_events (consumer_group, channel, event_id, payload, error) VALUES ($1, $2, $3, $4, $5)",
		[group, channel, payload?.id ?? null, JSON.stringify(payload), String(err?.message ?? err).slice(0, 1000)]
	);
}

// One T per service and channel it consumes, made on first use.
function perConsumer<T>(map: WeakMap<Service, Map<string, T>>, svc: Service, channel: string, make: () => T): T {
	let mine = map.get(svc);
	if (!mine) map.set(svc, (mine = new Map()));
	let value = mine.get(channel);
	if (value === undefined) mine.set(channel, (value = make()));
	return value;
}

const slotsOf = new WeakMap<Service, Map<string, Slots>>();

// Wraps a channel handler: de-duplicate by event id, run each event in its own transaction (at most maxInFlight at
// once, as when each event was a message of its own), back off before a retry.
function idempotent(group: string, channel: string, handler: ChannelHandler, maxInFlight: number) {
	return async function (this: Service, events: any[], raw: any) {
		const run = async (payload: any) => {
			const db = await getDb();
			const committed: (() => void)[] = [];
			await db.transaction(async tx => {
				if (payload?.id) {
					const fresh = await tx.query(
						"INSERT INTO processed_events (consumer_group, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
						[group, payload.id]
					);
					if (fresh.rowCount === 0) return; // already handled: at-least-once delivery sent it again
				}
				await handler.call(this, payload, tx, fn => committed.push(fn));
			});
			for (const fn of committed)
				try {
					fn();
				} catch (err) {
					this.logger.warn(`After-commit step of ${channel} failed:`, (err as Error).message);
				}
		};
		const slots = perConsumer(slotsOf, this, channel, () => new Slots(maxInFlight));
		await deliver(this, group, channel, events, raw, list => failuresOf(list, e => slots.run(() => run(e))));
	};
}

interface Waiting {
	payload: any;
	resolve: () => void;
	reject: (err: unknown) => void;
}

// Collects one service's messages of one channel into batches, one transaction each, one batch at a time: the
// processed_events rows of the whole batch in one INSERT … RETURNING (ids sorted, so replicas lock them in the same
// order), then the handler with the events that were fresh. A message is settled (acked) only when its batch has
// committed; a failed batch fails each of its messages, which are then retried alone so one bad event cannot keep
// failing its neighbours.
class Batcher {
	private waiting: Waiting[] = [];
	private timer?: NodeJS.Timeout;
	private running = 0;

	constructor(
		private svc: Service,
		private group: string,
		private channel: string,
		private opts: BatchOptions,
		private handler: BatchHandler
	) {}

	add(payload: any): Promise<void> {
		return new Promise((resolve, reject) => {
			this.waiting.push({ payload, resolve, reject });
			this.kick();
		});
	}

	alone(payload: any): Promise<void> {
		return this.commit([payload]);
	}

	private kick() {
		if (this.running >= (this.opts.concurrency ?? 1) || !this.waiting.length) return;
		if (this.waiting.length >= this.opts.max) return this.run();
		this.timer ??= setTimeout(() => this.run(), this.opts.ms);
	}

	private run() {
		if (this.timer) clearTimeout(this.timer);
		this.timer = undefined;
		while (this.running < (this.opts.concurrency ?? 1) && this.waiting.length) {
			const batch = this.waiting.splice(0, this.opts.max);
			this.running++;
			void this.commit(batch.map(w => w.payload))
				.then(
					() => batch.forEach(w => w.resolve()),
					err => {
						this.svc.logger.warn(
							`Batch of ${batch.length} on ${this.channel} failed:`,
							(err as Error)?.message
						);
						batch.forEach(w => w.reject(err));
					}
				)
				.finally(() => {
					this.running--;
					// What arrived during this batch's transaction has waited long enough: it goes next, no timer.
					if (this.waiting.length) this.run();
				});
		}
	}

	private async commit(payloads: any[]) {
		const db = await getDb();
		const committed: (() => void)[] = [];
		await db.transaction(async tx => {
			const ids = [...new Set(payloads.map(p => p?.id).filter((id): id is string => !!id))].sort();
			let fresh = new Set<string>();
			if (ids.length) {
				const { rows } = await tx.query<{ event_id: string }>(
					`INSERT INTO processed_events (consumer_group, event_id) SELECT $1, unnest($2::uuid[])
					 ON CONFLICT DO NOTHING RETURNING event_id`,
					[this.group, ids]
				);
				fresh = new Set(rows.map(r => r.event_id.toLowerCase()));
			}
			// Each fresh id once, even when the batch holds two deliveries of it.
			const events = payloads.filter(p => !p?.id || fresh.delete(String(p.id).toLowerCase()));
			if (events.length) await this.handler.call(this.svc, events, tx, fn => committed.push(fn));
		});
		for (const fn of committed)
			try {
				fn();
			} catch (err) {
				this.svc.logger.warn(`After-commit step of ${this.channel} failed:`, (err as Error).message);
			}
	}
}

const batchers = new WeakMap<Service, Map<string, Batcher>>();

function batched(group: string, channel: string, handler: BatchHandler, opts: BatchOptions) {
	return async function (this: Service, events: any[], raw: any) {
		const b = perConsumer(batchers, this, channel, () => new Batcher(this, group, channel, opts, handler));
		// A message's events join the batch together; a retry takes each alone.
		const attemptOnce: Attempt = (list, attempt) =>
			attempt > 0 ? failuresOf(list, e => b.alone(e), true) : failuresOf(list, e => b.add(e));
		await deliver(this, group, channel, events, raw, attemptOnce, true);
	};
}

type RawHandler = (this: Service, payload: any, raw: any) => Promise<void>;
type EventsHandler = (this: Service, events: any[], raw: any) => Promise<void>;

// The channel's message handler: unpacks a message's events and, when the channel has `types`, drops those of other
// types at once, before any transaction or de-duplication.
function unpacked(types: string[] | undefined, handler: EventsHandler): RawHandler {
	const wanted = types && new Set(types);
	return async function (this: Service, payload: any, raw: any) {
		let events = eventsOf(payload);
		if (wanted) events = events.filter(e => wanted.has(e?.type));
		if (events.length) await handler.call(this, events, raw);
	};
}

// Refuses a consumer whose group its module's manifest does not declare: no producer would declare its queue, and
// events published while it is down would be dropped by RabbitMQ.
function checkConsumesDeclared(svc: Service, dir: string, mod: ModuleManifest | undefined) {
	const channels = Object.entries<{ group: string }>((svc.schema as ServiceSchema).channels ?? {});
	for (const [channel, { group }] of channels) {
		const wanted = `{ channel: "${channel}", group: "${group}" }`;
		if (!mod)
			throw new Errors.ServiceSchemaError(
				`Service "${svc.name}" consumes ${channel} but was not loaded from a module folder in ${dir}, so no ` +
					`producer knows its consumer group`,
				{ channel, group }
			);
		if (!mod.consumes.some(c => c.channel === channel && c.group === group))
			throw new Errors.ServiceSchemaError(
				`Service "${svc.name}" consumes ${channel} as group "${group}", which module "${mod.name}" does not ` +
					`declare: add ${wanted} to consumes in ${path.join(dir, mod.name, `${mod.name}.module.ts`)}`,
				{ channel, group }
			);
	}
}

// `channels: { "*": { group, handler } }`: one entry per channel that group reads, as the module's manifest says
// (its `consumesAll`, expanded by loadManifests to every channel the other modules publish).
function expandWildcard(schema: any) {
	const def = schema.channels?.["*"];
	if (!def) return;
	const group = def.group ?? schema.name;
	const manifests = loadManifests(getConfig().servicesDir ?? SERVICES_DIR);
	if (!manifests.some(m => m.consumesAll?.group === group))
		throw new Errors.ServiceSchemaError(
			`Service "${schema.name}" consumes "*" as group "${group}", which no module declares: add ` +
				`consumesAll: { group: "${group}" } to its manifest`,
			{ group }
		);
	delete schema.channels["*"];
	for (const channel of channelsConsumedBy(manifests, group))
		schema.channels[channel] ??= { ...(typeof def === "function" ? { handler: def } : def), group };
}

export const EventsMixin: Partial<ServiceSchema> = {
	merged(schema: any) {
		expandWildcard(schema);
		const group = schema.name;
		for (const [channel, def] of Object.entries<any>(schema.channels ?? {})) {
			// One event, or a batch's events when `batch` is set.
			const given: ChannelHandler & BatchHandler = typeof def === "function" ? def : def.handler;
			const types: unknown = typeof def === "function" ? undefined : def.types;
			if (types !== undefined && (!Array.isArray(types) || !types.every(t => typeof t === "string")))
				throw new Errors.ServiceSchemaError(
					`Service "${schema.name}": channel ${channel}'s types must be a list of event types`,
					{ channel }
				);
			const chanGroup = def.group ?? group;
			// `batch` may be a function, for options read from settings when the service is created.
			const batch: BatchOptions | undefined = typeof def.batch === "function" ? def.batch() : def.batch;
			schema.channels[channel] = {
				...(typeof def === "function" ? {} : def),
				...(batch ? { batch } : {}),
				group: chanGroup,
				handler: unpacked(
					types as string[] | undefined,
					batch
						? batched(chanGroup, channel, given, batch)
						: idempotent(chanGroup, channel, given, def.maxInFlight ?? getConfig().channelsMaxInFlight)
				),
				// A batch fills only if that many messages may be unacknowledged at once (the AMQP prefetch): room for the
				// batches in flight and the next one.
				...(batch ? { maxInFlight: def.maxInFlight ?? batch.max * ((batch.concurrency ?? 1) + 1) } : {}),
				deadLettering: {
					enabled: true,
					queueName: `${chanGroup}.${channel}.dead`,
					exchangeName: `${chanGroup}.${channel}.dlx`
				}
			};
		}
	},

	methods: {
		// Runs fn in a transaction; events it publishes are written to the outbox there and relayed after commit.
		async withEvents<T>(this: Service, fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T> {
			const db = await getDb();
			const events: PlatformEvent[] = [];
			const result = await db.transaction(async tx => {
				const publish: Publish = (type, data) => {
					const event = makeEvent(type, data);
					events.push(event);
					return event;
				};
				const out = await fn(tx, publish);
				await writeManyToOutbox(tx, events);
				return out;
			});
			if (events.length) relays.get(this.broker)?.relay.then(relay => relay.kick());
			return result;
		}
	},

	async started(this: Service) {
		const dir = getConfig().servicesDir ?? SERVICES_DIR;
		const manifests = loadManifests(dir);
		const mod = manifestOfServiceFile(dir, (this as { __filename?: string }).__filename);
		checkConsumesDeclared(this, dir, mod);
		const relay = await startRelay(this.broker, manifests);
		if (mod) relay.publishesTo(mod.publishes);
	},

	async stopped(this: Service) {
		await Promise.all(retrying.get(this) ?? []);
		await stopRelay(this.broker);
	}
};
