// The gateway module's events: the broadcast any service sends to push a message to sockets, relayed by every
// gateway replica to its own.
import type {} from "../../lib/events/types";

declare module "../../lib/events/types" {
	interface BroadcastEvents {
		"gateway.push": { room: string; event: string; payload: unknown };
	}
}
