// DatabaseMixin: the service holds the process's database handle while it runs (lib/db: opened by the first user,
// closed after the last). Its `stopped` runs after the service's own, so a service's last writes still find it open.
import type { ServiceSchema } from "../lib/schema";
import { acquireDb, releaseDb } from "../lib/db";

export const DatabaseMixin: Partial<ServiceSchema> = {
	async started() {
		await acquireDb();
	},
	async stopped() {
		await releaseDb();
	}
};
