// Periodic housekeeping of a service's own tables (rows nobody needs any more): `method` runs every `everyMs`
// while the service runs; a failure is logged and the next round tries again. Any replica may run it: the
// methods are idempotent DELETEs.
import type { Service } from "moleculer";
import type { ServiceSchema } from "../lib/schema";

// The timer and the method live under names chosen at run time.
type Housekept = Service & Record<string, unknown>;

export function HousekeepingMixin(method: string, everyMs: number, what: string): Partial<ServiceSchema> {
	const timer = `$housekeeping_${method}`;
	return {
		started(this: Housekept) {
			this[timer] = setInterval(
				() =>
					(this[method] as () => Promise<void>)().catch((err: Error) =>
						this.logger.warn(`Could not ${what}:`, err.message)
					),
				everyMs
			).unref();
		},
		stopped(this: Housekept) {
			clearInterval(this[timer] as NodeJS.Timeout);
		}
	};
}
