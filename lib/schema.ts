// The service schema as this platform writes it: Moleculer's, plus what our middlewares read from actions
// (`permission`, moleculer-web's `rest`, `cache`), `channels` (@moleculer/channels) and `adapter` (moleculer-db).
import type { ServiceSchema as MoleculerServiceSchema } from "moleculer";

export interface ServiceSchema extends Omit<MoleculerServiceSchema, "actions" | "settings" | "methods" | "mixins"> {
	settings?: Record<string, any>;
	actions?: Record<string, any>;
	methods?: Record<string, (...args: any[]) => any>;
	channels?: Record<string, any>;
	mixins?: Partial<ServiceSchema>[];
	adapter?: unknown;
	merged?: (schema: any) => void;
}
