// The secrets module's events: it publishes no durable channel, only its broadcast to every replica.
import type {} from "../../lib/events/types";

declare module "../../lib/events/types" {
	interface BroadcastEvents {
		// A secret, a grant or the organization's vault changed: every SecretsClientMixin drops the values it caches
		// for that organization (narrowed to one environment or name when given). Carries no value.
		"secrets.changed": {
			organizationId: string;
			environment?: string;
			name?: string;
			secretId?: string;
			grant?: string;
		};
	}
}
