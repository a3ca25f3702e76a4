// CancellableMixin: `this.inFlight` (lib/in-flight.ts) registers the service's running requests; the broadcast
// `event` ({ requestId }) aborts one on whichever replica runs it, and stopping the service aborts them all. With
// `drainOnStop`, a stopping replica first lets them finish, within the broker's shutdown budget: a stream already
// answering (its call has returned, so the broker's graceful stop no longer waits for it) is not cut by a rolling
// restart. Durable work that another replica takes over (agent runs) is aborted at once instead, and so are calls
// that answer only when done (MCP tool calls): the broker's stop has waited for those already.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { InFlight, stopTimeLeft } from "../lib/in-flight";

const registry = (service: Service) => (service as Service & { inFlight: InFlight }).inFlight;

// Waits (for what is left of the broker's graceful-stop budget) for the service's running requests, then aborts the
// rest.
// A service whose own `stopped` must follow this (ai closes its log writer after) calls it there; the mixin's
// `stopped` runs after the service's own and then finds nothing left.
export async function stopInFlight(service: Service, reason: unknown, drain = true): Promise<void> {
	const inFlight = registry(service);
	if (drain && inFlight.size > 0) {
		const ms = stopTimeLeft(service.broker);
		service.logger.info(`Letting ${inFlight.size} requests in flight finish (up to ${(ms / 1000).toFixed(1)} s)`);
		if (!(await inFlight.settled(ms)))
			service.logger.warn(
				`${inFlight.size} requests still running after ${(ms / 1000).toFixed(1)} s are aborted`
			);
	}
	inFlight.abortAll(reason);
}

export function CancellableMixin(
	event: string,
	reason: (why: string) => unknown,
	{ drainOnStop }: { drainOnStop: boolean }
): Partial<ServiceSchema> {
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
			return stopInFlight(this, reason("service stopping"), drainOnStop);
		}
	};
}
