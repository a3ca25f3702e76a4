// The AI module's configuration tables share one shape: tenant CRUD for admins (read for everyone in the
// organization), and every change tells the AI replicas to drop their cached copy of the organization's set-up.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { DbMixin, TenantReference } from "../../mixins/db.mixin";
import { broadcast } from "../../lib/events/broadcast";

// A positive whole number an admin may leave unset or clear (a limit, a token cap).
export const optionalCount = {
	type: "number",
	integer: true,
	positive: true,
	optional: true,
	nullable: true,
	convert: true
} as const;

export function AiConfigMixin(
	table: string,
	columns: string[],
	writable: Record<string, any>,
	rest: string,
	// What the UI calls a row ("routing rule"), and the tenant references of DbMixin.
	entity: { entityName: string; references?: Record<string, TenantReference> }
): Partial<ServiceSchema> {
	const changed = function (this: Service, _json: unknown, ctx: Context) {
		broadcast(this.broker, "ai.config.changed", { organizationId: (ctx.meta as any).auth?.organizationId });
	};
	return {
		mixins: [
			DbMixin({
				table,
				columns: ["id", "organization_id", ...columns, "created_at", "updated_at"],
				writable,
				tenant: true,
				permissions: { read: "ai:read", write: "ai:manage" },
				rest,
				...entity
			})
		],
		actions: { count: false },
		entityCreated: changed,
		entityUpdated: changed,
		entityRemoved: changed
	} as Partial<ServiceSchema>;
}
