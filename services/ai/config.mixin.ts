// The AI module's configuration tables share one shape: tenant CRUD for admins (read for everyone in the
// organization), and every change tells the AI replicas to drop their cached copy of the organization's set-up.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { DbMixin, TenantReference } from "../../mixins/db.mixin";
import { broadcast } from "../../lib/events/broadcast";
import { isUuid, tenantSql } from "../../lib/db/tenant";
import type { ConfigCheck } from "./model-references";

// A positive whole number an admin may leave unset or clear (a limit, a token cap).
export const optionalCount = {
	type: "number",
	integer: true,
	positive: true,
	optional: true,
	nullable: true,
	convert: true
} as const;

// The column that names a row in a live notice ("Ana created routing rule gpt-4o"), where it is not `name`.
const LIVE_LABEL: Record<string, string> = {
	ai_routing_rules: "model",
	ai_fallback_chains: "model",
	ai_rate_limits: "scope"
};

export function AiConfigMixin(
	table: string,
	columns: string[],
	writable: Record<string, any>,
	rest: string,
	// What the UI calls a row ("routing rule"), and the tenant references of DbMixin.
	entity: { entityName: string; references?: Record<string, TenantReference> },
	// Checks a row before it is written (model names against real deployments): on create every field, on update
	// the fields the update changes, seen with the rest of the row.
	check?: ConfigCheck
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
				...entity,
				live: table in LIVE_LABEL ? { label: LIVE_LABEL[table] } : true
			})
		],
		actions: { count: false },
		...(check && {
			hooks: {
				before: {
					async create(ctx: Context<Record<string, any>>) {
						await check(tenantSql(ctx), ctx.params, new Set(Object.keys(ctx.params)));
					},
					async update(ctx: Context<Record<string, any>>) {
						const { id, ...changes } = ctx.params;
						const t = tenantSql(ctx);
						const sql = `SELECT * FROM ${table} WHERE id = $1 AND organization_id = $org`;
						// A row that is not there is the update's own 404.
						const row = isUuid(id) ? await t.one(sql, [id]) : undefined;
						if (row) await check(t, { ...row, ...changes }, new Set(Object.keys(changes)));
					}
				}
			}
		}),
		entityCreated: changed,
		entityUpdated: changed,
		entityRemoved: changed
	} as Partial<ServiceSchema>;
}
