// The auth module's events: it publishes no durable channel, only broadcasts that make every replica drop what it
// holds for a session, an API key or a membership at once.
import type {} from "../../lib/events/types";

declare module "../../lib/events/types" {
	interface BroadcastEvents {
		// Gateways close the sockets opened with the session.
		"auth.session.revoked": { sessionId: string };
		// Gateways close the sockets opened with the key.
		"auth.apikey.revoked": { apiKeyId: string };
		// Someone joined, left or changed role (userId absent: the whole organization, e.g. deleted): cached
		// memberships go and sockets follow.
		"auth.membership.changed": { organizationId: string; userId?: string };
	}
}
