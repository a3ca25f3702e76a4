// The one way to tell every replica to drop a cached copy or act (cancel a request, close a socket): a broadcast
// whose name and payload a module declares in its events file (`BroadcastEvents` in lib/events/types.ts). It is
// delivered only to nodes that are up and is never stored: domain events go through the outbox (withEvents) instead.
import type { ServiceBroker } from "moleculer";
import type { BroadcastEvents } from "./types";

declare module "./types" {
	interface BroadcastEvents {
		// DbMixin, after every write of a service: each replica drops its cached answers of that service.
		[name: `cache.clean.${string}`]: undefined;
	}
}

export type BroadcastName = keyof BroadcastEvents & string;
type PayloadArgs<N extends BroadcastName> = BroadcastEvents[N] extends undefined ? [] : [payload: BroadcastEvents[N]];

export function broadcast<N extends BroadcastName>(broker: ServiceBroker, name: N, ...payload: PayloadArgs<N>) {
	return broker.broadcast(name, payload[0]);
}
