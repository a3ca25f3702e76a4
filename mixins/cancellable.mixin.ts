// CancellableMixin: `this.inFlight` (lib/in-flight.ts) registers the service's running requests; the broadcast
// `event` ({ requestId }) aborts one on whichever replica runs it, and stopping the service aborts them all.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { InFlight } from "../lib/in-flight";

const registry = (service: Service) => (service as Service & { inFlight: InFlight }).inFlight;

export function CancellableMixin(event: string, reason: (why: string) => unknown): Partial<ServiceSchema> {
	return {
		events: {
			[event](this: Service, ctx: Context<{ requestId: string }>) {
				registry(this).abort(ctx.params.requestId, reason("request cancelled by the client"));
			}
		},
		created(this: Service) {
			Object.assign(this, { inFlight: new InFlight() });
		},
		stopped(this: Service) {
			registry(this).abortAll(reason("service stopping"));
		}
	};
}
