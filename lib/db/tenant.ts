// One way to run SQL on tenant tables that DbMixin's CRUD cannot express. The organization comes from the caller's
// context, never from a module's arguments: every statement names it as `$org` (bound here to the caller's
// organization) and a statement without `$org` is refused before it reaches the database, so a forgotten
// organization filter fails the first test that runs it instead of leaking another organization's rows.
import type { Context } from "moleculer";
import { getDb, Queryable, QueryResult } from "./index";
import { authOf } from "../authz";
import { forbidden, notFound } from "../errors";
import type { AuthInfo } from "../permissions";

const ORG = /\$org\b/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(v: unknown): v is string {
	return typeof v === "string" && UUID.test(v);
}

// `$org` becomes the next positional parameter; the statement must name it.
export function bindOrganization(sql: string, params: unknown[], organizationId: string): [string, unknown[]] {
	if (!ORG.test(sql)) throw new Error(`tenant SQL must filter by organization ($org): ${sql.slice(0, 120)}`);
	const n = params.length + 1;
	return [sql.replace(/\$org\b/g, `$${n}`), [...params, organizationId]];
}

// Optional filters: each `[sql, value]` whose value is not undefined is added, every `?` in it being that value.
// `where(params, ["s.organization_id = $org", null], ["s.environment = ?", env])` → "s.organization_id = … AND …".
export function where(params: unknown[], ...parts: [string, unknown][]): string {
	const out: string[] = [];
	for (const [sql, value] of parts) {
		if (value === undefined) continue;
		if (sql.includes("?")) params.push(value);
		out.push(sql.replace(/\?/g, () => `$${params.length}`));
	}
	return out.join(" AND ");
}

export class TenantSql {
	constructor(
		readonly organizationId: string,
		// Who is acting, when a request is (absent for an internal call whose organization was proven otherwise).
		readonly auth: AuthInfo | undefined,
		private readonly conn?: Queryable
	) {}

	async query<T = any>(sql: string, params: unknown[] = []): Promise<QueryResult<T>> {
		const [text, values] = bindOrganization(sql, params, this.organizationId);
		return (this.conn ?? (await getDb())).query<T>(text, values);
	}

	async rows<T = any>(sql: string, params: unknown[] = []): Promise<T[]> {
		return (await this.query<T>(sql, params)).rows;
	}

	async one<T = any>(sql: string, params: unknown[] = []): Promise<T | undefined> {
		return (await this.query<T>(sql, params)).rows[0];
	}

	// The row a client's id names ($1 of sql; further params are $2…), or a 404 for `what`. An id that is not a UUID
	// names nothing, like another organization's: a 404, not PostgreSQL's 422 for the uuid column.
	async byId<T = any>(what: string, sql: string, id: unknown, params: unknown[] = []): Promise<T> {
		if (!isUuid(id)) throw notFound(what);
		const row = await this.one<T>(sql, [id, ...params]);
		if (!row) throw notFound(what);
		return row;
	}

	// fn's statements run in one transaction, bound to the same organization.
	async transaction<T>(fn: (t: TenantSql) => Promise<T>): Promise<T> {
		if (this.conn) return fn(this);
		return (await getDb()).transaction(tx => fn(new TenantSql(this.organizationId, this.auth, tx)));
	}
}

// The caller's organization (403 when the request has none selected).
export function tenantSql(ctx: Context<any, any>): TenantSql {
	const auth = authOf(ctx);
	if (!auth?.organizationId) throw forbidden("no organization selected");
	return new TenantSql(auth.organizationId, auth);
}

// For internal actions whose organization is proven by other means than the caller's session (a service token
// bound to it, a housekeeping round over one organization): named so a reader sees the organization is not ctx's.
export function organizationSql(organizationId: string): TenantSql {
	return new TenantSql(organizationId, undefined);
}
