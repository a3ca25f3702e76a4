// Cancelling a call that runs on another node. Whoever started the call chose its request id (the `requestID` call
// option, seen by the handler as ctx.requestID) and, to stop it, broadcasts `<service>.cancel` with `{ requestId }`;
// the replica running it aborts what it registered under that id (ai keeps such an in-flight registry). Destroying
// a returned stream stops it only on the node that holds it, and a call that has not answered yet has no stream.
import type { ServiceBroker } from "moleculer";

export interface CancelRequest {
	requestId: string;
}

export const cancelEvent = (service: string) => `${service}.cancel`;

export function cancelCall(broker: ServiceBroker, service: string, requestId: string): void {
	broker.broadcast(cancelEvent(service), { requestId } satisfies CancelRequest);
}
