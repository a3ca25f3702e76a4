// What a change of organizations or memberships makes stale, dropped before the change answers. Shared by
// auth-organizations and auth-invitations, so that joining by an invitation and being added by an admin clean up alike.
import type { Service, ServiceBroker } from "moleculer";
import { broadcast } from "../../lib/events/broadcast";
import { dropCachedAnswers } from "../../mixins/cached-answers.mixin";

export type MembershipChange = { organizationId: string; userId?: string };

// A user's organizations changed (created, renamed, joined, left): cached auth.me answers go on every replica. Every
// user's, since these changes are rare and a rename concerns all of its members.
export function organizationsChanged(broker: ServiceBroker, logger: Service["logger"]): Promise<void> {
	return dropCachedAnswers(broker, "auth", logger);
}

// Someone joined, left or changed role (userId absent: the whole organization): besides auth.me, identities cached
// by gateways and cached team memberships are stale. Awaited: this node's caches (and a shared Redis cache) are
// clean before the change answers; other replicas follow as the broadcast reaches them. A failed broadcast does not
// undo a committed change.
export async function membershipChanged(broker: ServiceBroker, logger: Service["logger"], change: MembershipChange) {
	await organizationsChanged(broker, logger);
	await broadcast(broker, "auth.membership.changed", change).catch((err: Error) => {
		logger.warn(`auth.membership.changed did not reach every node: ${err.message}`);
	});
}
