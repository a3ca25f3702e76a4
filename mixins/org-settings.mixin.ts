// OrgSettingsMixin: one row of settings per organization in the module's own table, read with defaults when the
// organization never changed them. Generates `settings` (GET /settings) and `configure` (PATCH /settings): a field
// absent from the request stays as it is; a nullable field may be set back to null. Hooks a service may define:
//   settingsTransaction(ctx, fn)  runs fn in the transaction that holds the row (default: creates it if missing);
//   settingsChanged(ctx, settings) after the change commits (e.g. tell replicas to drop cached copies).
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { TenantSql, tenantSql } from "../lib/db/tenant";
import { named, type ResponseRule } from "../lib/response";

export interface SettingField {
	column: string;
	// What an organization that never changed it gets (keep equal to the column's default in the migration).
	default: unknown;
	// The validation rule of a field `configure` may change; without one the field is read only.
	rule?: Record<string, unknown>;
	// How a read-only field (one without `rule`) reads, for OpenAPI and the UI's types.
	type?: ResponseRule;
	// Applied to a written value before it is stored (e.g. de-duplicating a list).
	normalize?: (value: any) => unknown;
}

export interface OrgSettingsOptions {
	table: string;
	permissions: { read: string; write: string };
	fields: Record<string, SettingField>;
	// A column the write sets to now().
	touch?: string;
	// Name of the settings' schema in OpenAPI (default: the table's name in PascalCase).
	schemaName?: string;
}

export type Settings = Record<string, any>;

export interface OrgSettingsMethods {
	readSettings(t: TenantSql): Promise<Settings>;
	settingsTransaction<T>(ctx: Context, fn: (t: TenantSql) => Promise<T>): Promise<T>;
	settingsChanged(ctx: Context, settings: Settings): Promise<void> | void;
}

type SettingsService = Service & OrgSettingsMethods;

const IDENT = /^[a-z_][a-z0-9_]*$/;

export function OrgSettingsMixin(opts: OrgSettingsOptions): Partial<ServiceSchema> {
	const { table, fields } = opts;
	for (const c of [table, opts.touch ?? "x", ...Object.values(fields).map(f => f.column)])
		if (!IDENT.test(c)) throw new Error(`OrgSettingsMixin: "${c}" is not an SQL identifier`);
	const columns = Object.values(fields).map(f => f.column);
	const params: Record<string, unknown> = { $$strict: true };
	for (const [name, f] of Object.entries(fields)) if (f.rule) params[name] = { ...f.rule, optional: true };
	const shape: Record<string, ResponseRule> = {};
	for (const [name, f] of Object.entries(fields)) {
		const { min: _min, max: _max, convert: _c, ...read } = f.rule ?? {};
		shape[name] = f.type ?? (f.rule ? read : "any");
	}
	const response = named(
		opts.schemaName ?? table.replace(/(^|_)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase()),
		shape
	);

	async function readSettings(t: TenantSql): Promise<Settings> {
		const row = await t.one(`SELECT ${columns.join(", ")} FROM ${table} WHERE organization_id = $org`);
		const out: Settings = {};
		for (const [name, f] of Object.entries(fields)) out[name] = row ? row[f.column] : f.default;
		return out;
	}

	return {
		actions: {
			settings: {
				rest: "GET /settings",
				permission: opts.permissions.read,
				response,
				handler(ctx: Context) {
					return readSettings(tenantSql(ctx));
				}
			},

			configure: {
				rest: "PATCH /settings",
				permission: opts.permissions.write,
				params,
				response,
				async handler(this: SettingsService, ctx: Context<Record<string, unknown>>) {
					const settings = await this.settingsTransaction(ctx, async t => {
						const values: unknown[] = [];
						const sets: string[] = [];
						for (const [name, f] of Object.entries(fields)) {
							const v = ctx.params[name];
							if (!f.rule || v === undefined) continue;
							values.push(f.normalize && v !== null ? f.normalize(v) : v);
							sets.push(`${f.column} = $${values.length}`);
						}
						if (opts.touch) sets.push(`${opts.touch} = now()`);
						if (sets.length)
							await t.query(
								`UPDATE ${table} SET ${sets.join(", ")} WHERE organization_id = $org`,
								values
							);
						return readSettings(t);
					});
					await this.settingsChanged(ctx, settings);
					return settings;
				}
			}
		},

		methods: {
			readSettings,
			settingsTransaction<T>(ctx: Context, fn: (t: TenantSql) => Promise<T>): Promise<T> {
				return tenantSql(ctx).transaction(async t => {
					await t.query(`INSERT INTO ${table} (organization_id) VALUES ($org) ON CONFLICT DO NOTHING`);
					return fn(t);
				});
			},
			settingsChanged() {}
		}
	};
}
