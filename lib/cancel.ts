// Cancelling a call that runs on another node. Whoever started the call chose its request id (the `requestID` call
// option, seen by the handler as ctx.requestID) and, to stop it, broadcasts `<service>.cancel` with `{ requestId }`;
// the replica running it aborts what it registered under that id (ai keeps such an in-flight registry). Destroying
// a returned stream stops it only on the node that holds it, and a call that has not answered yet has no stream.
import type { ServiceBroker } from "moleculer";
import { broadcast } from "./events/broadcast";

export interface CancelRequest {
	requestId: string;
}

declare module "./events/types" {
	interface BroadcastEvents {
		[name: `${string}.cancel`]: CancelRequest;
	}
}

export const cancelEvent = (service: string) => `${service}.cancel` as const;

export function cancelCall(broker: ServiceBroker, service: string, requestId: string): void {
	broadcast(broker, cancelEvent(service), { requestId });
}
