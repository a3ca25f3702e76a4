// EventsMixin: publish durable events with a database change, and consume channels idempotently.
//   publishing: `await this.withEvents(async (tx, publish) => { ...writes...; publish("x.y.z", data) })`
//     -> events go to the outbox in the same transaction and are relayed after commit.
//   consuming:  `channels: { "ai.events": { handler(event, tx) {...} } }`
//     -> each event id is handled once per consumer group (recorded in processed_events in the handler's
//        transaction); failures are retried with back-off, then dead-lettered. The service's module declares each
//        channel and group it consumes in its manifest (`consumes` in services/<module>/<module>.module.ts), or the
//        service does not start: producers in other processes read the manifests to declare the groups' queues.
//     `channels: { "*": { group, handler } }` reads every channel the module's `consumesAll` stands for.
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

// Wraps a channel handler: de-duplicate by event id, run in a transaction, back off before a retry.
function idempotent(group: string, channel: string, handler: ChannelHandler) {
	return async function (this: Service, payload: any, raw: any) {
		const config = getConfig();
		const amqpHeaders = raw?.properties?.headers;
		const run = async () => {
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

		if (amqpHeaders) {
			// Cluster: the adapter redelivers (counting attempts in a header) and dead-letters after maxRetries.
			try {
				await run();
			} catch (err) {
				const attempt = Number(amqpHeaders["x-redelivered-count"] ?? 0);
				this.logger.warn(`Handler of ${channel} failed (attempt ${attempt + 1}):`, (err as Error).message);
				if (attempt + 1 < config.channelsMaxRetries) await sleep(retryDelay(attempt));
				throw err;
			}
			return;
		}

		// Embedded: the in-process adapter neither retries nor dead-letters, so this does both.
		for (let attempt = 0; ; attempt++) {
			try {
				return await run();
			} catch (err: any) {
				this.logger.warn(`Handler of ${channel} failed (attempt ${attempt + 1}):`, err.message);
				if (attempt + 1 >= config.channelsMaxRetries) {
					const db = await getDb();
					await db.query(
						"INSERT INTO dead_letter_events (consumer_group, channel, event_id, payload, error) VALUES ($1, $2, $3, $4, $5)",
						[
							group,
							channel,
							payload?.id ?? null,
							JSON.stringify(payload),
							String(err?.message ?? err).slice(0, 1000)
						]
					);
					return;
				}
				await sleep(retryDelay(attempt));
			}
		}
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
			const handler: ChannelHandler = typeof def === "function" ? def : def.handler;
			const chanGroup = def.group ?? group;
			schema.channels[channel] = {
				...(typeof def === "function" ? {} : def),
				group: chanGroup,
				handler: idempotent(chanGroup, channel, handler),
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
		await stopRelay(this.broker);
	}
};
