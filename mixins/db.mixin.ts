// DbMixin: moleculer-db CRUD over the platform adapter. With `tenant: true` every read, write and cache key is scoped
// to the caller's organization, whatever ids the caller sends: another organization's rows simply do not exist.
import MoleculerDb from "moleculer-db";
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { PgAdapter } from "../lib/db/pg-adapter";
import { getDb, Queryable } from "../lib/db";
import { isUuid } from "../lib/db/tenant";
import { authOf } from "../lib/authz";
import { duplicate, forbidden, fromDbError, invalid, notFound } from "../lib/errors";
import { CachedAnswersMixin, dropCachedAnswers, type CachedAnswersMethods } from "./cached-answers.mixin";
import { announceChange, type ChangeAction } from "../lib/live";
import { listOf, named, pageOf, rowOf, type ResponseRule } from "../lib/response";

export interface DbMixinOptions {
	table: string;
	// Every column of the table (the adapter refuses any other name).
	columns: string[];
	// Columns clients may set, with their validation rules; others (id, organization_id, timestamps) are never writable.
	writable: Record<string, any>;
	// Columns returned to clients.
	fields?: string[];
	tenant?: boolean;
	searchFields?: string[];
	// Permissions for the generated actions; `false` leaves the generated CRUD actions out.
	permissions?: { read: string; write: string } | false;
	// REST base path (e.g. "/auth/teams"): the generated actions get the usual routes under it.
	rest?: string;
	// What users call a row, as the UI does ("routing rule"): errors name it so. Default: the table's name, singular.
	// The writable rules' `label`s (the UI's field labels) name the fields in validation and duplicate-key errors.
	entityName?: string;
	// Columns that hold ids of rows in other tenant tables, e.g. { provider_id: { table: "ai_providers", entity:
	// "provider" } }: a write naming a row outside the caller's organization is refused (checkTenantReferences).
	references?: Record<string, TenantReference>;
	// The row clients read, for OpenAPI and the UI's generated types: derived from columns and writable rules
	// (lib/response.ts rowOf); `entity` types the columns that derivation cannot (numerics read as strings, JSON).
	entity?: Record<string, ResponseRule>;
	// Name of the row's schema in OpenAPI (default: the table's name, singular, in PascalCase: ai_models -> AiModel).
	schemaName?: string;
	// Live notices (lib/live.ts) after each generated write of a tenant table with permissions, naming the row by its
	// entity name and by the column `label` (default "name"). Absent: the service announces itself, if at all.
	live?: true | { label: string };
}

export interface TenantReference {
	table: string;
	entity: string;
}

type Row = Record<string, unknown>;

// `this` in a service built with DbMixin (and in DbMixin's own methods): the service with the adapter, moleculer-db's
// methods and the ones defined here. A service with methods of its own extends it.
export interface DbService extends Service, CachedAnswersMethods {
	adapter: PgAdapter;
	tenantId(ctx: Context): string | undefined;
	scope(ctx: Context, query?: Record<string, unknown>): Record<string, unknown>;
	findScoped(ctx: Context, id: string): Promise<Row>;
	clearCache(): Promise<void>;
	transaction<T>(fn: (tx: Queryable & { adapter: PgAdapter }) => Promise<T>): Promise<T>;
	// One document in, one out; a list in, a list out (the service's `fields`, populated).
	transformDocuments(ctx: Context, params: Record<string, unknown>, doc: Row): Promise<Row>;
	transformDocuments(ctx: Context, params: Record<string, unknown>, docs: Row[]): Promise<Row[]>;
	entityChanged(type: string, json: unknown, ctx: Context, raw?: unknown): Promise<void>;
}

const CRUD_ACTIONS = ["find", "count", "list", "get", "create", "insert", "update", "remove"];

export function DbMixin(opts: DbMixinOptions): Partial<ServiceSchema> {
	const tenant = opts.tenant ?? false;
	const entity = opts.entityName ?? opts.table.replace(/s$/, "").replace(/_/g, " ");
	const labels: Record<string, string> = {};
	for (const [k, rule] of Object.entries(opts.writable))
		labels[k] = (typeof rule === "object" && rule?.label) || k.replace(/_/g, " ");
	const writeError = (e: any, values: Row) =>
		e?.code === "23505" ? duplicate(e, entity, labels, values) : fromDbError(e, entity);
	const orgKey = "#auth.organizationId";
	const perms = opts.permissions;

	// Named after the table, not the words users read, so the UI's generated type names stay put.
	const schemaName =
		opts.schemaName ??
		opts.table.replace(/s$/, "").replace(/(^|[\s_-]+)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
	const row = named(schemaName, rowOf(opts.fields ?? opts.columns, opts.writable, opts.entity));

	const updateRules: Record<string, any> = {};
	for (const [k, rule] of Object.entries(opts.writable))
		updateRules[k] = typeof rule === "string" ? { type: rule, optional: true } : { ...rule, optional: true };

	const actions: Record<string, any> = {};
	if (perms === false) for (const a of CRUD_ACTIONS) actions[a] = false;
	else {
		const read = perms?.read;
		const write = perms?.write;
		// Reads are cached (keys: see `merged`); the cache is cleaned on every write (moleculer-db's clearCache).
		const route = (r: string) => (opts.rest ? { rest: r } : {});
		Object.assign(actions, {
			find: { ...route("GET /all"), permission: read, cache: true, response: listOf(row) },
			count: { ...route("GET /count"), permission: read, cache: true, response: "number|integer" },
			list: { ...route("GET /"), permission: read, cache: true, response: pageOf(row) },
			get: { ...route("GET /:id"), permission: read, cache: true, params: { id: "string" }, response: row },
			create: {
				...route("POST /"),
				permission: write,
				params: { $$strict: true, ...opts.writable },
				response: row
			},
			insert: false,
			update: {
				...route("PATCH /:id"),
				permission: write,
				params: { $$strict: true, id: "string", ...updateRules },
				response: row
			},
			remove: { ...route("DELETE /:id"), permission: write, params: { id: "string" }, response: row }
		});
	}

	return {
		mixins: [MoleculerDb as any, CachedAnswersMixin],
		adapter: new PgAdapter({ table: opts.table, columns: opts.columns }),
		settings: {
			...(opts.rest ? { rest: opts.rest } : {}),
			idField: "id",
			fields: opts.fields,
			pageSize: 20,
			maxPageSize: 100,
			maxLimit: 1000
		},
		actions,

		// Every cached action of the service is keyed by every parameter it declares (fields, populate, … change the
		// answer) and, for a tenant table, by the caller's organization; parameters it does not declare are removed
		// before the handler sees them, so nothing outside the key reaches it. Computed once the mixins are merged:
		// merging joins key lists index by index, which silently dropped keys. An answer that also depends on the
		// caller's role or user must name "#auth.role" / "#auth.userId" in its own keys.
		// After every write clearCache drops the cached answers on every replica (CachedAnswersMixin).
		merged(schema: ServiceSchema) {
			for (const [name, action] of Object.entries<any>(schema.actions ?? {})) {
				if (!action || typeof action !== "object" || !action.cache) continue;
				const given: string[] = (typeof action.cache === "object" && action.cache.keys) || [];
				const params = Object.keys(action.params ?? {}).filter(p => !p.startsWith("$$"));
				const keys = [...new Set([...(tenant ? [orgKey] : []), ...given, ...params])];
				const cache = typeof action.cache === "object" ? action.cache : {};
				const declared = { $$strict: "remove", ...action.params };
				schema.actions![name] = { ...action, params: declared, cache: { ...cache, keys } };
			}
		},

		methods: {
			// moleculer-db's (cache cleaning, the entityCreated… hooks), then the organization's open pages are told.
			async entityChanged(this: DbService, type: string, json: any, ctx: Context, raw?: unknown) {
				await (MoleculerDb as any).methods.entityChanged.call(this, type, json, ctx, raw);
				if (!tenant || !perms || !opts.live || !json?.id) return;
				const label = json[opts.live === true ? "name" : opts.live.label];
				announceChange(this.broker, ctx, {
					entity: this.fullName,
					noun: entity,
					id: String(json.id),
					action: type as ChangeAction,
					label: label == null ? undefined : String(label),
					permission: perms.read
				});
			},

			// After every write (moleculer-db calls it): one broadcast drops the service's cached answers on every
			// replica. Awaited, so this node's copy (and a shared Redis cache) is gone before the write answers.
			// With per-node caches (memory, no Redis) a broadcast reaches the other replicas later than the write
			// answers, so a read right after it could be served from another replica's stale copy (a removed team
			// member still revealing a team-granted secret): the write waits until every replica has dropped its copy.
			async clearCache(this: DbService) {
				await dropCachedAnswers(this.broker, this.fullName, this.logger);
			},

			// The organization every query of a tenant table is limited to.
			tenantId(ctx: Context): string | undefined {
				if (!tenant) return undefined;
				const org = authOf(ctx)?.organizationId;
				if (!org) throw forbidden("no organization selected");
				return org;
			},

			scope(this: DbService, ctx: Context, query: Record<string, unknown> = {}) {
				const org = this.tenantId(ctx);
				return org ? { ...query, organization_id: org } : query;
			},

			sanitizeParams(this: DbService, ctx: Context, params: any) {
				const query = clientQuery(params.query);
				const p = (MoleculerDb as any).methods.sanitizeParams.call(this, ctx, { ...params, query });
				p.query = this.scope(ctx, p.query);
				if (p.searchFields == null && opts.searchFields) p.searchFields = opts.searchFields;
				// A page or offset past any real table would be written into SQL as 1e+300.
				for (const k of ["offset", "limit"])
					if (p[k] != null && !Number.isSafeInteger(p[k]))
						throw invalid(params.page != null ? "page" : k, "is too large");
				return p;
			},

			// A value PostgreSQL refuses for its column (a non-UUID id, a malformed date, a NUL byte) is the client's.
			_find(this: DbService, ctx: Context, params: any) {
				return queryErrors((MoleculerDb as any).methods._find.call(this, ctx, params), entity);
			},
			_count(this: DbService, ctx: Context, params: any) {
				return queryErrors((MoleculerDb as any).methods._count.call(this, ctx, params), entity);
			},
			_list(this: DbService, ctx: Context, params: any) {
				return queryErrors((MoleculerDb as any).methods._list.call(this, ctx, params), entity);
			},

			async _get(this: DbService, ctx: Context, params: any) {
				const doc = await this.findScoped(ctx, params.id);
				return this.transformDocuments(ctx, params, doc);
			},

			async _create(this: DbService, ctx: Context, params: any) {
				const org = this.tenantId(ctx);
				if (org && opts.references) await checkTenantReferences(await getDb(), org, opts.references, params);
				const row = await this.adapter
					.insert(org ? { ...params, organization_id: org } : params)
					.catch((e: any) => {
						throw writeError(e, params);
					});
				const json = await this.transformDocuments(ctx, {}, row);
				await this.entityChanged("created", json, ctx, row);
				return json;
			},

			async _update(this: DbService, ctx: Context, params: any) {
				const { id, ...changes } = params;
				const org = this.tenantId(ctx);
				if (org && opts.references) await checkTenantReferences(await getDb(), org, opts.references, changes);
				const rows = await this.adapter
					.updateMany(this.scope(ctx, { id }), { $set: changes })
					.catch((e: any) => {
						throw writeError(e, changes);
					});
				if (!rows.length) throw notFound(entity);
				const json = await this.transformDocuments(ctx, {}, rows[0]);
				await this.entityChanged("updated", json, ctx, rows[0]);
				return json;
			},

			async _remove(this: DbService, ctx: Context, params: any) {
				const doc = await this.findScoped(ctx, params.id);
				await this.adapter.removeMany(this.scope(ctx, { id: params.id }));
				const json = await this.transformDocuments(ctx, {}, doc);
				await this.entityChanged("removed", json, ctx, doc);
				return json;
			},

			async findScoped(this: DbService, ctx: Context, id: string) {
				if (!isUuid(id)) throw notFound(entity);
				const doc = await this.adapter.findOne(this.scope(ctx, { id }));
				if (!doc) throw notFound(entity);
				return doc;
			},

			// Runs fn in one database transaction; the adapter bound to it is `tx.adapter`.
			async transaction<T>(
				this: DbService,
				fn: (tx: Queryable & { adapter: PgAdapter }) => Promise<T>
			): Promise<T> {
				const db = await getDb();
				return db.transaction(tx => fn(Object.assign(tx, { adapter: this.adapter.withTx(tx) })));
			}
		}
	};
}

function queryErrors<T>(pending: Promise<T>, entity: string): Promise<T> {
	return pending.catch((e: unknown) => {
		throw fromDbError(e, entity, "query");
	});
}

// `query` from a client (an object, or JSON text in a query string): column -> value or list of values. Operators
// ({"$gt": …}) and nested structures are refused with the column named, never handed to the adapter.
function clientQuery(raw: unknown): Record<string, unknown> | undefined {
	if (raw == null) return undefined;
	let query = raw;
	if (typeof raw === "string") {
		try {
			query = JSON.parse(raw);
		} catch {
			throw invalid("query", "is not valid JSON");
		}
	}
	if (typeof query !== "object" || query === null || Array.isArray(query))
		throw invalid("query", 'must be a JSON object of column: value, e.g. {"name":"Core"}');
	const scalar = (v: unknown) => v === null || ["string", "number", "boolean"].includes(typeof v);
	for (const [column, value] of Object.entries(query))
		if (!scalar(value) && !(Array.isArray(value) && value.every(v => v !== null && scalar(v))))
			throw invalid(`query.${column}`, "must be a value or a list of values");
	return query as Record<string, unknown>;
}

export { isUuid };

// Each referenced id (or array of ids) in `values` must name a row of the organization; otherwise a 422 names the
// field, with the same words whether the id belongs to another organization or to nothing, so nobody can probe ids.
export async function checkTenantReferences(
	db: Queryable,
	organizationId: string,
	references: Record<string, TenantReference>,
	values: Record<string, unknown>
): Promise<void> {
	for (const [field, ref] of Object.entries(references)) {
		const value = values[field];
		if (value == null) continue;
		const ids = [...new Set(Array.isArray(value) ? value : [value])];
		if (!/^[a-z_][a-z0-9_]*$/.test(ref.table)) throw new Error(`references: "${ref.table}" is not a table name`);
		const sql = `SELECT count(*)::int AS n FROM ${ref.table} WHERE organization_id = $1 AND id = ANY($2::uuid[])`;
		const found = ids.every(isUuid) ? (await db.query<{ n: number }>(sql, [organizationId, ids])).rows[0].n : 0;
		if (found !== ids.length) throw invalid(field, `no such ${ref.entity} in this organization`);
	}
}
