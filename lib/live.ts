// Live notices: after a write that open pages show, the service broadcasts a small "changed" notice and every
// gateway replica passes it to its own sockets of that organization whose caller may read the entity
// (services/gateway/socket-bridge.ts). A notice names what changed and who changed it, never a value: a page that
// cares reads the entity again through the API, with the reader's own permissions.
import type { Context, ServiceBroker } from "moleculer";
import { broadcast } from "./events/broadcast";
import type { AuthInfo } from "./permissions";

export type ChangeAction = "created" | "updated" | "removed";

export interface ChangeNotice {
	organizationId: string;
	// The service whose list changed ("auth-teams", "secrets", "ai-providers"): what a page subscribes to.
	entity: string;
	// The word a person uses for one of them ("team", "secret", "provider"), for the toast.
	noun: string;
	id: string;
	action: ChangeAction;
	// What the row is called (a name, a model): shown in the toast; never a secret's value.
	label?: string;
	actor?: { id: string; name: string };
	// Only sockets whose caller holds this permission get the notice.
	permission: string;
	// Rows only their owner sees (API keys): the owner, and callers holding ownerPermission, get it.
	ownerId?: string;
	ownerPermission?: string;
	// A job's progress (a count, never a value), so a progress bar moves without reading the job again.
	progress?: { done: number; total: number };
}

declare module "./events/types" {
	interface BroadcastEvents {
		"gateway.changed": ChangeNotice;
	}
}

type Auth = AuthInfo & { user?: { name?: string | null; email?: string } };

// Who made the change, as the toast names them.
function actorOf(auth: Auth | undefined): ChangeNotice["actor"] {
	if (!auth?.userId) return auth?.service ? { id: auth.service, name: `service ${auth.service}` } : undefined;
	return { id: auth.userId, name: auth.user?.name || auth.user?.email || "Someone" };
}

// Tells the organization's open pages that `entity` changed. Never throws: the write has committed already, and a
// missed notice costs a page a reload, not data.
export function announceChange(
	broker: ServiceBroker,
	ctx: Context | undefined,
	notice: Omit<ChangeNotice, "organizationId" | "actor"> & { organizationId?: string }
): void {
	const auth = ctx?.meta ? ((ctx.meta as { auth?: Auth }).auth ?? undefined) : undefined;
	const organizationId = notice.organizationId ?? auth?.organizationId;
	if (!organizationId) return;
	const label = notice.label == null ? undefined : String(notice.label).slice(0, 200);
	void Promise.resolve(
		broadcast(broker, "gateway.changed", { ...notice, label, organizationId, actor: actorOf(auth) })
	).catch(err => broker.logger.warn(`live notice for ${notice.entity} not sent: ${(err as Error).message}`));
}

// Whether a socket's caller may see the notice: same organization, the read permission, and for owned rows the
// owner or a manager.
export function mayReceive(
	auth: { userId?: string; organizationId?: string; permissions?: string[] },
	n: ChangeNotice
): boolean {
	if (auth.organizationId !== n.organizationId) return false;
	const holds = (p: string) => !!auth.permissions?.includes(p);
	if (!holds(n.permission)) return false;
	if (n.ownerId && auth.userId !== n.ownerId) return !!n.ownerPermission && holds(n.ownerPermission);
	return true;
}
