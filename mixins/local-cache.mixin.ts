// LocalCacheMixin: `this[name]` is a LocalCache (lib/local-cache.ts) on every replica; each event in `dropOn` drops
// the entries its payload makes stale, on the replica that receives it. The publisher broadcasts the event after
// the change commits; the time to live bounds what a lost broadcast can leave behind.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { LocalCache, LocalCacheOptions } from "../lib/local-cache";

export function LocalCacheMixin<V extends NonNullable<unknown>, P = Record<string, unknown>>(
	name: string,
	opts: LocalCacheOptions & { dropOn: Record<string, (payload: P) => (value: V, key: string) => boolean> }
): Partial<ServiceSchema> {
	const events: Record<string, (this: Service, ctx: Context<P>) => void> = {};
	for (const [event, stale] of Object.entries(opts.dropOn))
		events[event] = function (this: Service, ctx: Context<P>) {
			(this as unknown as Record<string, LocalCache<V>>)[name].dropWhere(stale(ctx.params));
		};
	return {
		events,
		created(this: Service) {
			(this as unknown as Record<string, LocalCache<V>>)[name] = new LocalCache<V>(opts);
		}
	};
}
