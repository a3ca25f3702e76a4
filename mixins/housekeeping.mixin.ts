// Periodic work of a service (pruning its own tables, a schedule of checks): `method` runs every `everyMs` while the
// service runs; a failure is logged and the next round tries again. A round never starts while the previous one is
// still running. `everyMs` may be read from the service once it is created (its settings); 0 turns the timer off.
import type { Service } from "moleculer";
import type { ServiceSchema } from "../lib/schema";

// The timer and the method live under names chosen at run time.
type Housekept = Service & Record<string, unknown>;

export function HousekeepingMixin(
	method: string,
	everyMs: number | ((service: Service) => number),
	what: string
): Partial<ServiceSchema> {
	const timer = `$housekeeping_${method}`;
	return {
		started(this: Housekept) {
			const period = typeof everyMs === "function" ? everyMs(this) : everyMs;
			if (!period) return;
			let running = false;
			this[timer] = setInterval(() => {
				if (running) return;
				running = true;
				(this[method] as () => Promise<void>)()
					.catch((err: Error) => this.logger.warn(`Could not ${what}:`, err.message))
					.finally(() => (running = false));
			}, period).unref();
		},
		stopped(this: Housekept) {
			clearInterval(this[timer] as NodeJS.Timeout);
		}
	};
}
