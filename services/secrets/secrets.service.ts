// Secrets: organization-scoped credentials, encrypted at rest, versioned, granted and audited; the only place
// plaintext exists. People reveal values through the gateway; services resolve them with the internal `resolve`.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { likeContains } from "../../lib/db/pg-adapter";
import { TenantSql, tenantSql, where } from "../../lib/db/tenant";
import { conflict, fromDbError, invalid, notFound } from "../../lib/errors";
import { DatabaseMixin } from "../../mixins/database.mixin";
import { AuditDenied, AuditedOptions, AuditMixin } from "../../mixins/audit.mixin";
import { IdentityAuthorityMixin } from "../../mixins/identity-authority.mixin";
import { OrgSettingsMixin } from "../../mixins/org-settings.mixin";
import { resolveBinding } from "../../mixins/secrets-client.mixin";
import { claimedService, IDENTITY_META } from "../../lib/service-identity";
import { broadcast } from "../../lib/events/broadcast";
import { announceChange, type ChangeAction } from "../../lib/live";
import * as R from "./secrets.responses";
import { environment, id, name, tags, value, META, META_FIELDS, Vault, Access, Op, SecretsThis } from "./secrets.types";
import VaultActions from "./vault";
import VersionActions from "./versions";
import GrantActions from "./grants";
import TransferActions from "./transfer";
import EnvironmentActions from "./environments";

const SecretsService: ServiceSchema = {
	name: "secrets",
	mixins: [
		DatabaseMixin,
		AuditMixin({ log: "secret_audit_logs", heads: "secret_audit_heads", permission: "secrets:manage" }),
		// Secrets issues and checks every service's identity (`verifyIdentity`, `proveService`).
		IdentityAuthorityMixin,
		OrgSettingsMixin({
			table: "vault_configurations",
			schemaName: "VaultSettings",
			permissions: { read: "secrets:read", write: "secrets:manage" },
			fields: {
				environments: {
					column: "environments",
					default: ["development", "staging", "production"],
					rule: { type: "array", items: environment, min: 1, max: 50 },
					normalize: (envs: string[]) => [...new Set(envs)]
				},
				maxVersions: {
					column: "max_versions",
					default: 50,
					rule: { type: "number", integer: true, min: 1, max: 1000, convert: true }
				},
				keyVersion: { column: "key_version", default: null, type: "number|integer|nullable" },
				rotatedAt: { column: "rotated_at", default: null, type: "date|nullable" }
			}
		}),
		VaultActions,
		VersionActions,
		GrantActions,
		TransferActions,
		EnvironmentActions
	],
	dependencies: ["auth-teams"],
	settings: { rest: "/secrets" },

	actions: {
		list: {
			rest: "GET /",
			response: R.listOf(R.SecretMeta),
			permission: "secrets:read",
			params: {
				$$strict: true,
				environment: { ...environment, optional: true },
				projectId: { type: "uuid", optional: true },
				search: { type: "string", max: 200, optional: true },
				includeDeleted: { type: "boolean", convert: true, optional: true }
			},
			async handler(ctx: Context<any>) {
				const p = ctx.params;
				const args: unknown[] = [];
				const filter = where(
					args,
					["s.organization_id = $org", null],
					["s.environment = ?", p.environment || undefined],
					["s.project_id = ?", p.projectId || undefined],
					["(s.name ILIKE ? OR s.description ILIKE ?)", p.search ? likeContains(p.search) : undefined],
					["s.deleted_at IS NULL", p.includeDeleted ? undefined : null]
				);
				const sql = `SELECT ${META} FROM secrets s WHERE ${filter} ORDER BY s.environment, s.name LIMIT 1000`;
				return tenantSql(ctx).rows(sql, args);
			}
		},

		get: {
			rest: "GET /:id",
			response: R.SecretDetail,
			permission: "secrets:read",
			params: { id },
			async handler(this: SecretsThis, ctx: Context<any>) {
				const t = tenantSql(ctx);
				const secret = await this.findSecret(t, ctx.params.id, true);
				const versions = await t.rows(
					`SELECT version, created_by, created_at, destroyed_at, key_version FROM secret_versions
					 WHERE secret_id = $1 AND organization_id = $org ORDER BY version DESC`,
					[secret.id]
				);
				return { ...this.meta(secret), versions };
			}
		},

		create: {
			retryPolicy: { enabled: false },
			rest: "POST /",
			response: R.SecretMeta,
			// Below secrets:manage, also a write grant covering the name in that environment (checked in the handler).
			permission: "secrets:write",
			params: {
				$$strict: true,
				environment,
				name,
				value,
				description: { type: "string", max: 1000, optional: true },
				tags,
				projectId: { type: "uuid", optional: true }
			},
			async handler(this: SecretsThis, ctx: Context<any>) {
				const p = ctx.params;
				const result = await this.audited(
					ctx,
					"create",
					`${p.environment}/${p.name}`,
					async (t: TenantSql, vault: Vault, access: Access) => {
						this.assertEnvironment(vault, p.environment);
						await access({ environment: p.environment, name: p.name }, "write");
						const secret = await t
							.one(
								`INSERT INTO secrets (organization_id, project_id, environment, name, description, tags, created_by)
							 VALUES ($org, $1, $2, $3, $4, $5, $6) RETURNING *`,
								[
									p.projectId ?? null,
									p.environment,
									p.name,
									p.description ?? "",
									p.tags ?? [],
									t.auth!.userId
								]
							)
							.catch(e => {
								throw fromDbError(e, `a secret named ${p.name} in ${p.environment}`, "name");
							});
						const version = await this.writeVersion(t, vault, secret, p.value);
						return { ...this.meta(secret), current_version: version };
					}
				);
				this.announce(result, ctx, "created");
				return result;
			}
		},

		// A new version (value), and/or new metadata. With `cas`, refused (409) unless `cas` is still the latest version.
		update: {
			retryPolicy: { enabled: false },
			rest: "PATCH /:id",
			response: R.SecretMeta,
			permission: "secrets:write",
			params: {
				$$strict: true,
				id,
				value: { ...value, optional: true },
				cas: { type: "number", integer: true, min: 0, optional: true, convert: true },
				description: { type: "string", max: 1000, optional: true },
				tags
			},
			async handler(this: SecretsThis, ctx: Context<any>) {
				const p = ctx.params;
				const action = p.value !== undefined ? "update" : "update-metadata";
				const result = await this.audited(
					ctx,
					action,
					p.id,
					async (t: TenantSql, vault: Vault, access: Access) => {
						const secret = await this.findSecret(t, p.id, false, true);
						await access(secret, "write");
						if (p.cas !== undefined && p.cas !== secret.current_version)
							throw conflict(
								`version ${p.cas} is no longer the latest (latest is ${secret.current_version})`,
								"cas"
							);
						if (p.description !== undefined || p.tags !== undefined)
							await t.query(
								`UPDATE secrets SET description = COALESCE($2, description), tags = COALESCE($3, tags), updated_at = now()
							 WHERE id = $1 AND organization_id = $org`,
								[secret.id, p.description ?? null, p.tags ?? null]
							);
						const version =
							p.value !== undefined
								? await this.writeVersion(t, vault, secret, p.value)
								: secret.current_version;
						const metadata = {
							description: p.description ?? secret.description,
							tags: p.tags ?? secret.tags
						};
						return { ...this.meta(secret), ...metadata, current_version: version };
					}
				);
				this.announce(result, ctx, "updated");
				return result;
			}
		},

		reveal: {
			rest: "POST /:id/reveal",
			response: R.Revealed,
			permission: "secrets:reveal",
			params: {
				$$strict: true,
				id,
				version: { type: "number", integer: true, min: 1, optional: true, convert: true }
			},
			async handler(this: SecretsThis, ctx: Context<any>) {
				return this.audited(
					ctx,
					"reveal",
					ctx.params.id,
					async (t: TenantSql, vault: Vault, access: Access) => {
						const secret = await this.findSecret(t, ctx.params.id);
						await access(secret, "read");
						const version = ctx.params.version ?? secret.current_version;
						const value = await this.readValue(t, vault, secret, version);
						return { id: secret.id, name: secret.name, environment: secret.environment, version, value };
					}
				);
			}
		},

		// Internal: another service reads a value by name, allowed by a grant to that service. The service is the one
		// its token proves (lib/service-identity.ts), never what the request claims (ctx.caller can be anything).
		resolve: {
			visibility: "public",
			params: {
				$$strict: true,
				organizationId: "uuid",
				environment,
				name,
				projectId: { type: "uuid", optional: true }
			},
			async handler(this: SecretsThis, ctx: Context<any, Record<string, unknown>>) {
				const p = ctx.params;
				const token = ctx.meta[IDENTITY_META];
				const claimed = claimedService(token);
				const op = async (t: TenantSql, vault: Vault) => {
					const service = this.proveService(token, "secrets.resolve", p.organizationId, resolveBinding(p));
					const secret = await t.one(
						`SELECT * FROM secrets WHERE organization_id = $org AND environment = $1 AND name = $2 AND deleted_at IS NULL
						 AND project_id IS NOT DISTINCT FROM $3`,
						[p.environment, p.name, p.projectId ?? null]
					);
					if (!secret || !(await this.hasGrant(t, secret, "read", [["service", service]])))
						throw new AuditDenied(`service ${service} has no read grant on ${p.environment}/${p.name}`);
					const value = await this.readValue(t, vault, secret, secret.current_version);
					return {
						name: secret.name,
						environment: secret.environment,
						version: secret.current_version,
						value
					};
				};
				// The organization is the one the service's token is bound to (checked in op), not a session's.
				const actor = { actorType: "service" as const, actorId: claimed };
				return this.audited(ctx, "resolve", `${p.environment}/${p.name}`, op, {
					organizationId: p.organizationId,
					actor
				});
			}
		},

		// Internal: a service keeps a credential it obtained itself (e.g. the mcp module's OAuth tokens), named under
		// its own prefix (`<service>/…`) and proved like `resolve`. The secret is created with a read grant for that
		// service; each store is a new version; `value: null` removes it. The value never leaves this action.
		store: {
			visibility: "public",
			retryPolicy: { enabled: false },
			params: {
				$$strict: true,
				organizationId: "uuid",
				environment,
				name,
				value: { ...value, nullable: true },
				description: { type: "string", max: 1000, optional: true }
			},
			async handler(this: SecretsThis, ctx: Context<any, Record<string, unknown>>) {
				const p = ctx.params;
				const token = ctx.meta[IDENTITY_META];
				const op = async (t: TenantSql, vault: Vault) => {
					const service = this.proveService(token, "secrets.store", p.organizationId, resolveBinding(p));
					if (!p.name.startsWith(`${service}/`))
						throw new AuditDenied(`service ${service} may store only secrets named ${service}/…`);
					let secret = await t.one(
						`SELECT * FROM secrets WHERE organization_id = $org AND environment = $1 AND name = $2
						 AND project_id IS NULL FOR UPDATE`,
						[p.environment, p.name]
					);
					if (p.value === null) {
						if (secret && !secret.deleted_at)
							await t.query(
								"UPDATE secrets SET deleted_at = now(), updated_at = now() WHERE id = $1 AND organization_id = $org",
								[secret.id]
							);
						return secret ?? null;
					}
					this.assertEnvironment(vault, p.environment);
					if (!secret) {
						secret = await t.one(
							`INSERT INTO secrets (organization_id, environment, name, description) VALUES ($org, $1, $2, $3)
							 RETURNING *`,
							[p.environment, p.name, p.description ?? ""]
						);
						await t.query(
							`INSERT INTO secret_access_grants (organization_id, secret_id, permission, grantee_type, grantee_id)
							 VALUES ($org, $1, 'read', 'service', $2)`,
							[secret!.id, service]
						);
					} else if (secret.deleted_at)
						await t.query(
							"UPDATE secrets SET deleted_at = NULL, updated_at = now() WHERE id = $1 AND organization_id = $org",
							[secret.id]
						);
					await this.writeVersion(t, vault, secret, p.value);
					return secret;
				};
				const actor = { actorType: "service" as const, actorId: claimedService(token) };
				const secret = await this.audited(ctx, "store", `${p.environment}/${p.name}`, op, {
					organizationId: p.organizationId,
					actor
				});
				if (secret) this.announce(secret, ctx, "updated");
				return { stored: p.value !== null };
			}
		},

		remove: {
			rest: "DELETE /:id",
			response: R.extend(R.SecretMeta, { deleted: { type: "equal", value: true } }),
			permission: "secrets:manage",
			params: { id },
			async handler(this: SecretsThis, ctx: Context<any>) {
				const result = await this.audited(ctx, "delete", ctx.params.id, async (t: TenantSql) => {
					const secret = await this.findSecret(t, ctx.params.id, false, true);
					await t.query(
						"UPDATE secrets SET deleted_at = now(), updated_at = now() WHERE id = $1 AND organization_id = $org",
						[secret.id]
					);
					return { ...this.meta(secret), deleted: true };
				});
				this.announce(result, ctx, "removed");
				return result;
			}
		},

		restore: {
			rest: "POST /:id/restore",
			response: R.SecretMeta,
			permission: "secrets:manage",
			params: { id },
			async handler(this: SecretsThis, ctx: Context<any>) {
				const result = await this.audited(ctx, "restore", ctx.params.id, async (t: TenantSql) => {
					const secret = await this.findSecret(t, ctx.params.id, true, true);
					if (!secret.deleted_at) throw conflict("secret is not deleted");
					await t
						.query(
							"UPDATE secrets SET deleted_at = NULL, updated_at = now() WHERE id = $1 AND organization_id = $org",
							[secret.id]
						)
						.catch(e => {
							throw fromDbError(e, "another secret with this name");
						});
					return { ...this.meta(secret), deleted_at: null };
				});
				this.announce(result, ctx, "updated");
				return result;
			}
		}
	},

	methods: {
		meta(secret: any) {
			return Object.fromEntries(META_FIELDS.map(f => [f, secret[f]]));
		},

		announce(this: SecretsThis, result: any, ctx: Context, action: ChangeAction) {
			// Clients drop cached values of this secret; the value itself never travels in an event.
			broadcast(this.broker, "secrets.changed", {
				organizationId: result.organization_id,
				secretId: result.id,
				environment: result.environment,
				name: result.name
			});
			// Open pages read the list again: the notice carries the name, as the list does, never the value.
			announceChange(this.broker, ctx, {
				organizationId: result.organization_id,
				entity: "secrets",
				noun: "secret",
				id: result.id,
				action,
				label: `${result.environment}/${result.name}`,
				permission: "secrets:read"
			});
		},

		assertEnvironment(vault: Vault, env: string) {
			if (!vault.environments.includes(env))
				throw invalid(
					"environment",
					`"${env}" is not one of this organization's environments (${vault.environments.join(", ")})`
				);
		},

		async findSecret(t: TenantSql, secretId: string, includeDeleted = false, lock = false) {
			const sql = `SELECT * FROM secrets WHERE id = $1 AND organization_id = $org${lock ? " FOR UPDATE" : ""}`;
			const s = await t.byId("secret", sql, secretId);
			if (s.deleted_at && !includeDeleted) throw notFound("secret");
			return s;
		},

		// Runs op in the vault's lock, in a transaction with the audit entry of its outcome (AuditMixin); a denied
		// attempt is recorded, then refused. An internal call (resolve) names its organization and actor.
		async audited<T>(
			this: SecretsThis,
			ctx: Context,
			action: string,
			target: string | null,
			op: Op<T>,
			internal?: AuditedOptions<T>["internal"]
		): Promise<T> {
			const auth = internal ? undefined : tenantSql(ctx).auth;
			// Other services are asked before the transaction (embedded, PGlite's one connection would wait for it).
			const grantees = auth ? await this.grantees(ctx, auth) : null;
			const access: (t: TenantSql) => Access = t =>
				auth
					? this.accessChecker(t, grantees)
					: async () => Promise.reject(new AuditDenied("no caller to check"));
			const details = (result: T) => {
				const version = (result as { current_version?: number } | undefined)?.current_version;
				return version ? { version } : undefined;
			};
			const run = async (t: TenantSql) => op(t, await this.lockVault(t), access(t));
			return this.auditedTransaction(ctx, action, target, run, { internal, details });
		},

		// Configuring (OrgSettingsMixin) is audited, in the vault's lock.
		settingsTransaction<T>(this: SecretsThis, ctx: Context, fn: (t: TenantSql) => Promise<T>): Promise<T> {
			return this.audited(ctx, "configure", null, (t: TenantSql) => fn(t));
		}
	}
};

export default SecretsService;
