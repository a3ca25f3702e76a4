// Quotas and budgets share one shape: tenant CRUD (usage:read to read, usage:manage to write), a subject that must
// be the organization's own team, member or API key, and every change tells the replicas that enforce them (the ai)
// to drop their copy of the organization's limits.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { DbMixin } from "../../mixins/db.mixin";
import type { ResponseRule } from "../../lib/response";
import { broadcast } from "../../lib/events/broadcast";
import { invalid } from "../../lib/errors";
import { isUuid, TenantSql, tenantSql } from "../../lib/db/tenant";
import "./usage.events";

const SUBJECT_SQL: Record<string, [string, string]> = {
	team: ["SELECT 1 FROM teams WHERE id = $1 AND organization_id = $org", "team"],
	user: ["SELECT 1 FROM organization_members WHERE user_id = $1 AND organization_id = $org", "member"],
	api_key: ["SELECT 1 FROM api_keys WHERE id = $1 AND organization_id = $org", "API key"]
};

// The subject matches the scope: none for the organization, one of the organization's own otherwise.
async function checkSubject(t: TenantSql, row: { scope?: string; subject_id?: string | null }) {
	if (row.scope === "organization") {
		if (row.subject_id) throw invalid("subject_id", "an organization-wide limit has no subject");
		return;
	}
	const [sql, what] = SUBJECT_SQL[row.scope ?? ""] ?? [];
	if (!sql) return;
	if (!row.subject_id) throw invalid("subject_id", `a ${row.scope!.replace("_", " ")} limit needs its ${what}`);
	if (!isUuid(row.subject_id) || !(await t.one(sql, [row.subject_id])))
		throw invalid("subject_id", `no such ${what} in this organization`);
}

export const LIMIT_COLUMNS = ["name", "scope", "subject_id", "period", "amount", "thresholds", "enabled"];

export const limitWritable = {
	name: { type: "string", min: 1, max: 200, trim: true, label: "Name" },
	scope: { type: "enum", values: ["organization", "team", "user", "api_key"], label: "Scope" },
	// The team, user or API key the limit is for; none for the organization.
	subject_id: { type: "uuid", optional: true, nullable: true, label: "Subject" },
	period: { type: "enum", values: ["day", "month"], label: "Period" },
	// Fractions of the limit at which a warning is sent, e.g. [0.5, 0.8].
	thresholds: {
		type: "array",
		items: { type: "number", min: 0.01, max: 0.99 },
		max: 5,
		unique: true,
		optional: true,
		label: "Warning thresholds"
	},
	enabled: { type: "boolean", optional: true, label: "Enabled" }
};

export function UsageLimitMixin(
	table: string,
	columns: string[],
	writable: Record<string, unknown>,
	rest: string,
	entityName: string,
	entity: Record<string, ResponseRule>
): Partial<ServiceSchema> {
	const changed = function (this: Service, _json: unknown, ctx: Context) {
		const organizationId = tenantSql(ctx).organizationId;
		return broadcast(this.broker, "usage.limits.changed", { organizationId });
	};
	return {
		mixins: [
			DbMixin({
				table,
				columns: ["id", "organization_id", ...columns, "created_at", "updated_at"],
				writable,
				tenant: true,
				permissions: { read: "usage:read", write: "usage:manage" },
				rest,
				entityName,
				entity,
				live: true
			})
		],
		hooks: {
			before: {
				async create(ctx: Context<Record<string, any>>) {
					await checkSubject(tenantSql(ctx), ctx.params);
				},
				async update(ctx: Context<Record<string, any>>) {
					const { id, ...changes } = ctx.params;
					if (!("scope" in changes) && !("subject_id" in changes)) return;
					const t = tenantSql(ctx);
					// A row that is not there is the update's own 404.
					const row = isUuid(id)
						? await t.one(
								`SELECT scope, subject_id FROM ${table} WHERE id = $1 AND organization_id = $org`,
								[id]
							)
						: undefined;
					if (row) await checkSubject(t, { ...row, ...changes });
				}
			}
		},
		entityCreated: changed,
		entityUpdated: changed,
		entityRemoved: changed
	} as Partial<ServiceSchema>;
}
