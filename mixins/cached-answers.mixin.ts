// CachedAnswersMixin: a service with cached actions whose answers a write can make stale, its own write or another
// service's (auth's `me` reads the organizations auth-organizations writes). The writer awaits
// `dropCachedAnswers(broker, service)`; this mixin gives the service what that reaches on each replica: the
// `cache.clean.<service>` broadcast's handler and the `dropCachedAnswers` action asked with per-node caches.
import { Cachers } from "moleculer";
import type { Context, Service, ServiceBroker } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { broadcast } from "../lib/events/broadcast";

export interface CachedAnswersMethods {
	dropCache(ctx?: Context): Promise<void>;
}

// Drops this node's cached answers of the service, on a broadcast (`ctx`) or where the change happened. A shared
// Redis cache is dropped once, where the change happened: a replica's late second drop would only throw away
// answers cached after the change.
async function dropCache(this: Service, ctx?: Context) {
	const cacher = this.broker.cacher;
	if (!cacher || (cacher instanceof Cachers.Redis && ctx && ctx.nodeID !== this.broker.nodeID)) return;
	await cacher.clean(`${this.fullName}.**`);
}

export const CachedAnswersMixin: Partial<ServiceSchema> = {
	merged(schema: ServiceSchema) {
		const drop = function (this: Service & CachedAnswersMethods, ctx: Context) {
			return this.dropCache(ctx);
		};
		schema.events = { ...schema.events, [`cache.clean.${schema.name}`]: drop };
		// Asked by the replica that wrote, when caches are per node (dropCachedAnswers).
		schema.actions = { ...schema.actions, dropCachedAnswers: { visibility: "public", handler: drop } };
	},
	methods: { dropCache }
};

// Drops `service`'s cached answers everywhere, awaited (DbMixin's clearCache after every write; a service that writes
// what another's answers read calls it for that one): this node's copy or the shared Redis one first (in a cluster a
// broadcast reaches even this node's own handler through the transporter, after the write has answered), then every
// replica by broadcast, and with per-node caches each other replica by a call, so no replica serves a stale copy
// once the write answers.
export async function dropCachedAnswers(broker: ServiceBroker, service: string, logger: Service["logger"]) {
	const warn = (err: Error) => logger.warn(`cached ${service} answers may outlive this write: ${err.message}`);
	const cacher = broker.cacher;
	await cacher?.clean(`${service}.**`);
	await broadcast(broker, `cache.clean.${service}`).catch(warn);
	if (!cacher || cacher instanceof Cachers.Redis) return;
	const action = `${service}.dropCachedAnswers`;
	const endpoints: { id: string; local: boolean }[] = broker.registry.getActionEndpoints(action)?.endpoints ?? [];
	await Promise.all(
		endpoints
			.filter(ep => !ep.local)
			.map(ep => broker.call(action, {}, { nodeID: ep.id, timeout: 2000, retries: 0 }).catch(warn))
	);
}
