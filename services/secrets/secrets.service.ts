// Secrets: organization-scoped credentials, encrypted at rest, versioned, granted and audited; the only place
// plaintext exists. People reveal values through the gateway; services resolve them with the internal `resolve`.
import crypto from "crypto";
import { Errors } from "moleculer";
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getConfig, moduleSettings } from "../../lib/config";
import secretsModule from "./secrets.module";
import { getDb } from "../../lib/db";
import { likeContains } from "../../lib/db/pg-adapter";
import { isUuid, organizationSql, TenantSql, tenantSql, where } from "../../lib/db/tenant";
import { grants } from "../../lib/authz";
import type { AuthInfo } from "../../lib/permissions";
import { conflict, fromDbError, invalid, notFound, unavailable } from "../../lib/errors";
import { DatabaseMixin } from "../../mixins/database.mixin";
import { AuditDenied, AuditedOptions, AuditMethods, AuditMixin } from "../../mixins/audit.mixin";
import { IdentityAuthorityMethods, IdentityAuthorityMixin } from "../../mixins/identity-authority.mixin";
import { OrgSettingsMixin } from "../../mixins/org-settings.mixin";
import { resolveBinding, SECRET_ENVIRONMENT, SECRET_NAME } from "../../mixins/secrets-client.mixin";
import { claimedService, IDENTITY_META } from "../../lib/service-identity";
import {
	DecryptError,
	loadMasterKeys,
	MasterKey,
	MasterKeys,
	open,
	seal,
	toBuffer,
	unwrapKey,
	valueAad,
	wrapKey
} from "./crypto";
import { parseDotenv, serializeDotenv } from "./dotenv";
import { broadcast } from "../../lib/events/broadcast";
import { announceChange, type ChangeAction } from "../../lib/live";
import * as R from "./secrets.responses";

const MAX_VALUE = 65_536;
const name = {
	type: "string",
	pattern: SECRET_NAME,
	messages: { stringPattern: "must start with a letter or _ and use letters, digits, _ . / -" }
};
const environment = {
	type: "string",
	pattern: SECRET_ENVIRONMENT,
	messages: { stringPattern: "must be lowercase letters, digits and -" }
};
const value = { type: "string", max: MAX_VALUE };
const id = { type: "string" };
const tags = { type: "array", items: { type: "string", max: 50 }, max: 20, optional: true };

// What a listing shows: names and metadata (the SecretMeta response), never values or ciphertext.
const META_FIELDS = Object.keys((R.SecretMeta as { props: Record<string, unknown> }).props);
const META = META_FIELDS.map(f => `s.${f}`).join(", ");

interface Vault {
	organization_id: string;
	key_version: number;
	wrapped_key: Buffer;
	kek_id: string;
	environments: string[];
	max_versions: number;
}

type Need = "read" | "write";

// Tampered, moved or wrongly keyed ciphertext is an integrity failure with a name, never garbage.
function decrypting<T>(what: string, fn: () => T): T {
	try {
		return fn();
	} catch (err) {
		if (err instanceof DecryptError)
			throw new Errors.MoleculerError(`${what} does not decrypt: ${err.message}`, 500, "DECRYPT_FAILED");
		throw err;
	}
}

type Access = (secret: { environment: string; name: string; id?: string }, need: Need) => Promise<void>;
type Op<T> = (t: TenantSql, vault: Vault, access: Access) => Promise<T>;
type Grantees = [string, string][] | null;

// What the service's methods see as `this`: its keys, its methods and its mixins'.
interface SecretsThis extends Service, AuditMethods, IdentityAuthorityMethods {
	keys: MasterKeys;
	meta(secret: any): Record<string, unknown>;
	announce(result: any, ctx: Context, action: ChangeAction): void;
	announceGrant(grant: any, ctx: Context, action: ChangeAction): void;
	assertEnvironment(vault: Vault, env: string): void;
	assertGrantee(ctx: Context, type: string, granteeId: string): Promise<void>;
	findSecret(t: TenantSql, secretId: string, includeDeleted?: boolean, lock?: boolean): Promise<any>;
	dataKey(vault: Vault): Buffer;
	readValue(t: TenantSql, vault: Vault, secret: any, version: number): Promise<string>;
	writeVersion(t: TenantSql, vault: Vault, secret: any, plaintext: string): Promise<number>;
	hasGrant(t: TenantSql, secret: any, need: Need, grantees: [string, string][]): Promise<boolean>;
	grantees(ctx: Context, auth: AuthInfo): Promise<Grantees>;
	accessChecker(t: TenantSql, grantees: Grantees): Access;
	lockVault(t: TenantSql): Promise<Vault>;
	audited<T>(
		ctx: Context,
		action: string,
		target: string | null,
		op: Op<T>,
		internal?: AuditedOptions<T>["internal"]
	): Promise<T>;
	checkMasterKey(): Promise<void>;
}

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
		})
	],
	dependencies: ["teams"],
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

		rollback: {
			retryPolicy: { enabled: false },
			rest: "POST /:id/rollback",
			response: R.extend(R.SecretMeta, { rolledBackTo: "number|integer" }),
			permission: "secrets:write",
			params: { $$strict: true, id, version: { type: "number", integer: true, min: 1, convert: true } },
			async handler(this: SecretsThis, ctx: Context<any>) {
				const result = await this.audited(
					ctx,
					"rollback",
					ctx.params.id,
					async (t: TenantSql, vault: Vault, access: Access) => {
						const secret = await this.findSecret(t, ctx.params.id, false, true);
						await access(secret, "write");
						const old = await this.readValue(t, vault, secret, ctx.params.version);
						const version = await this.writeVersion(t, vault, secret, old);
						return { ...this.meta(secret), current_version: version, rolledBackTo: ctx.params.version };
					}
				);
				this.announce(result, ctx, "updated");
				return result;
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
		},

		// The version's ciphertext is erased; its number stays in the history as destroyed.
		destroyVersion: {
			rest: "DELETE /:id/versions/:version",
			response: R.extend(R.SecretMeta, { destroyedVersion: "number|integer" }),
			permission: "secrets:manage",
			params: { id, version: { type: "number", integer: true, min: 1, convert: true } },
			async handler(this: SecretsThis, ctx: Context<any>) {
				const { id: secretId, version } = ctx.params;
				const result = await this.audited(
					ctx,
					"destroy-version",
					`${secretId}@${version}`,
					async (t: TenantSql) => {
						const secret = await this.findSecret(t, secretId, true, true);
						const r = await t.query(
							`UPDATE secret_versions SET ciphertext = NULL, iv = NULL, auth_tag = NULL, destroyed_at = now()
						 WHERE secret_id = $1 AND version = $2 AND destroyed_at IS NULL AND organization_id = $org`,
							[secret.id, version]
						);
						if (!r.rowCount) throw notFound("version");
						return { ...this.meta(secret), destroyedVersion: version };
					}
				);
				this.announce(result, ctx, "updated");
				return result;
			}
		},

		grants: {
			rest: "GET /grants",
			response: R.listOf(R.Grant),
			permission: "secrets:manage",
			params: { secretId: { type: "string", optional: true } },
			async handler(ctx: Context<any>) {
				const secretId = ctx.params.secretId;
				if (secretId && !isUuid(secretId)) return [];
				const args: unknown[] = [];
				const filter = where(args, ["organization_id = $org", null], ["secret_id = ?", secretId || undefined]);
				return tenantSql(ctx).rows(
					`SELECT * FROM secret_access_grants WHERE ${filter} ORDER BY created_at`,
					args
				);
			}
		},

		// What the caller may do with secrets, for the UI to offer only that: the permissions its role holds and, below
		// secrets:manage, its own grants (to the user or a team of theirs, unexpired). Names and prefixes, no values.
		access: {
			rest: "GET /access",
			response: R.Access,
			permission: "secrets:read",
			async handler(this: SecretsThis, ctx: Context) {
				const t = tenantSql(ctx);
				const auth = t.auth!;
				const permissions = (auth.permissions ?? []).filter(p => p.startsWith("secrets:"));
				const grantees = await this.grantees(ctx, auth);
				if (!grantees) return { all: true, permissions, grants: [] };
				const params: unknown[] = [];
				const who = grantees
					.map(([type, g]) => `(grantee_type = $${params.push(type)} AND grantee_id = $${params.push(g)})`)
					.join(" OR ");
				const grants = await t.rows(
					`SELECT g.secret_id AS "secretId", COALESCE(g.environment, s.environment) AS environment,
					 COALESCE(g.name_prefix, s.name) AS "namePrefix", g.secret_id IS NOT NULL AS exact, g.permission,
					 g.expires_at AS "expiresAt"
					 FROM secret_access_grants g LEFT JOIN secrets s ON s.id = g.secret_id AND s.organization_id = $org
					 WHERE g.organization_id = $org AND (g.expires_at IS NULL OR g.expires_at > now()) AND (${who})
					 ORDER BY environment, "namePrefix"`,
					params
				);
				return { all: false, permissions, grants };
			}
		},

		grant: {
			retryPolicy: { enabled: false },
			rest: "POST /grants",
			response: R.Grant,
			permission: "secrets:manage",
			params: {
				$$strict: true,
				secretId: { type: "uuid", optional: true },
				environment: { ...environment, optional: true },
				namePrefix: { type: "string", max: 200, optional: true },
				permission: { type: "enum", values: ["read", "write"] },
				granteeType: { type: "enum", values: ["user", "team", "service"] },
				granteeId: { type: "string", min: 1, max: 100 },
				expiresAt: { type: "date", convert: true, optional: true }
			},
			async handler(this: SecretsThis, ctx: Context<any>) {
				const p = ctx.params;
				if (!!p.secretId === (p.namePrefix != null && !!p.environment))
					throw invalid("secretId", "give either secretId, or environment and namePrefix");
				if (p.expiresAt && p.expiresAt <= new Date()) throw invalid("expiresAt", "must be in the future");
				if (p.granteeType !== "service" && !isUuid(p.granteeId))
					throw invalid("granteeId", "must be a user or team id");
				// Other services are called before the transaction: embedded (PGlite, one connection) they would wait for it.
				if (p.granteeType !== "service") await this.assertGrantee(ctx, p.granteeType, p.granteeId);
				const target = p.secretId ?? `${p.environment}/${p.namePrefix}*`;
				const result = await this.audited(ctx, "grant", target, async (t: TenantSql, vault: Vault) => {
					if (p.secretId) await this.findSecret(t, p.secretId, true);
					else this.assertEnvironment(vault, p.environment);
					const [env, prefix] = p.secretId ? [null, null] : [p.environment, p.namePrefix];
					return t.one(
						`INSERT INTO secret_access_grants (organization_id, secret_id, environment, name_prefix, permission, grantee_type,
						 grantee_id, expires_at, created_by) VALUES ($org, $1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
						[
							p.secretId ?? null,
							env,
							prefix,
							p.permission,
							p.granteeType,
							p.granteeId,
							p.expiresAt ?? null,
							t.auth!.userId
						]
					);
				});
				broadcast(this.broker, "secrets.changed", { organizationId: result.organization_id, grant: result.id });
				this.announceGrant(result, ctx, "created");
				return result;
			}
		},

		revokeGrant: {
			rest: "DELETE /grants/:grantId",
			response: R.Revoked,
			permission: "secrets:manage",
			params: { grantId: "string" },
			async handler(this: SecretsThis, ctx: Context<any>) {
				const result = await this.audited(ctx, "revoke-grant", ctx.params.grantId, async (t: TenantSql) => {
					const sql = "DELETE FROM secret_access_grants WHERE id = $1 AND organization_id = $org RETURNING *";
					return t.byId("grant", sql, ctx.params.grantId);
				});
				broadcast(this.broker, "secrets.changed", { organizationId: result.organization_id, grant: result.id });
				this.announceGrant(result, ctx, "removed");
				return { id: result.id, revoked: true };
			}
		},

		import: {
			retryPolicy: { enabled: false },
			rest: "POST /import",
			response: R.ImportResult,
			permission: "secrets:manage",
			params: {
				$$strict: true,
				environment,
				content: { type: "string", max: 1_000_000 },
				overwrite: { type: "boolean", default: false }
			},
			async handler(this: SecretsThis, ctx: Context<any>) {
				const { environment: env, overwrite } = ctx.params;
				const { entries, errors } = parseDotenv(ctx.params.content);
				if (errors.length) throw invalid("content", `line ${errors[0].line}: ${errors[0].message}`);
				const result = await this.audited(ctx, "import", env, async (t: TenantSql, vault: Vault) => {
					this.assertEnvironment(vault, env);
					const out = { created: [] as string[], updated: [] as string[], skipped: [] as string[] };
					for (const e of entries) {
						if (e.value.length > MAX_VALUE) throw invalid("content", `${e.name}: value too long`);
						const existing = await t.one(
							`SELECT * FROM secrets WHERE organization_id = $org AND environment = $1 AND name = $2 AND project_id IS NULL
							 FOR UPDATE`,
							[env, e.name]
						);
						if (existing && existing.deleted_at === null && !overwrite) {
							out.skipped.push(e.name);
							continue;
						}
						const secret =
							existing ??
							(await t.one(
								"INSERT INTO secrets (organization_id, environment, name, created_by) VALUES ($org, $1, $2, $3) RETURNING *",
								[env, e.name, t.auth!.userId]
							));
						if (existing?.deleted_at)
							await t.query(
								"UPDATE secrets SET deleted_at = NULL WHERE id = $1 AND organization_id = $org",
								[existing.id]
							);
						await this.writeVersion(t, vault, secret, e.value);
						(existing ? out.updated : out.created).push(e.name);
					}
					return out;
				});
				broadcast(this.broker, "secrets.changed", {
					organizationId: tenantSql(ctx).organizationId,
					environment: env
				});
				announceChange(this.broker, ctx, {
					entity: "secrets",
					noun: "secrets of",
					id: env,
					action: "updated",
					label: env,
					permission: "secrets:read"
				});
				return result;
			}
		},

		export: {
			rest: "POST /export",
			response: R.Exported,
			permission: "secrets:manage",
			params: { $$strict: true, environment },
			async handler(this: SecretsThis, ctx: Context<any>) {
				const env = ctx.params.environment;
				return this.audited(ctx, "export", env, async (t: TenantSql, vault: Vault) => {
					const rows = await t.rows(
						`SELECT * FROM secrets WHERE organization_id = $org AND environment = $1 AND deleted_at IS NULL
						 AND project_id IS NULL ORDER BY name`,
						[env]
					);
					const entries = [];
					for (const s of rows)
						entries.push({ name: s.name, value: await this.readValue(t, vault, s, s.current_version) });
					return { environment: env, count: entries.length, content: serializeDotenv(entries) };
				});
			}
		},

		// Re-encrypts every version of the organization under a new data key, in one transaction.
		rotateDataKey: {
			retryPolicy: { enabled: false },
			rest: "POST /rotate-data-key",
			response: R.Rotated,
			permission: "secrets:own",
			async handler(this: SecretsThis, ctx: Context) {
				const result = await this.audited(ctx, "rotate-data-key", null, async (t: TenantSql, vault: Vault) => {
					const oldKey = this.dataKey(vault);
					const newKey = crypto.randomBytes(32);
					const next = vault.key_version + 1;
					const rows = await t.rows(
						`SELECT id, secret_id, version, ciphertext, iv, auth_tag FROM secret_versions
						 WHERE organization_id = $org AND ciphertext IS NOT NULL`
					);
					for (const v of rows) {
						const aad = valueAad(t.organizationId, v.secret_id, v.version);
						const sealed = {
							ciphertext: toBuffer(v.ciphertext),
							iv: toBuffer(v.iv),
							authTag: toBuffer(v.auth_tag)
						};
						const plain = decrypting(`version ${v.version} of secret ${v.secret_id}`, () =>
							open(oldKey, sealed, aad)
						);
						const s = seal(newKey, plain, aad);
						await t.query(
							`UPDATE secret_versions SET ciphertext = $2, iv = $3, auth_tag = $4, key_version = $5
							 WHERE id = $1 AND organization_id = $org`,
							[v.id, s.ciphertext, s.iv, s.authTag, next]
						);
					}
					await t.query(
						`UPDATE vault_configurations SET key_version = $1, wrapped_key = $2, kek_id = $3, rotated_at = now()
						 WHERE organization_id = $org`,
						[next, wrapKey(this.keys.current, newKey, t.organizationId, next), this.keys.current.id]
					);
					vault.key_version = next;
					return { keyVersion: next, reencryptedVersions: rows.length };
				});
				broadcast(this.broker, "secrets.changed", { organizationId: tenantSql(ctx).organizationId });
				return result;
			}
		},

		// Operators (REPL): after setting MASTER_KEY to the new key and MASTER_KEY_PREVIOUS to the old one,
		// re-wrap every organization's data key under the new master key. Values are not touched.
		rotateMasterKey: {
			visibility: "public",
			async handler(this: SecretsThis) {
				const kek = this.keys.current;
				// Across organizations (an operator's task): each one is then re-wrapped in its own transaction.
				const { rows } = await (
					await getDb()
				).query("SELECT organization_id FROM vault_configurations WHERE kek_id <> $1", [kek.id]);
				for (const { organization_id } of rows)
					await organizationSql(organization_id).transaction(async t => {
						const vault: Vault = await this.lockVault(t);
						const dek = this.dataKey(vault);
						await t.query(
							"UPDATE vault_configurations SET wrapped_key = $1, kek_id = $2, rotated_at = now() WHERE organization_id = $org",
							[wrapKey(kek, dek, organization_id, vault.key_version), kek.id]
						);
						await this.appendAudit(t, {
							actorType: "system",
							action: "rotate-master-key",
							outcome: "success",
							details: { kekId: kek.id }
						});
					});
				return { rewrapped: rows.length, kekId: kek.id };
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

		// Who may do what changed: pages offering actions read the caller's access again.
		announceGrant(this: SecretsThis, grant: any, ctx: Context, action: ChangeAction) {
			announceChange(this.broker, ctx, {
				organizationId: grant.organization_id,
				entity: "secret-grants",
				noun: `${grant.permission} grant`,
				id: grant.id,
				action,
				label: grant.secret_id ? undefined : `${grant.environment}/${grant.name_prefix}*`,
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

		async assertGrantee(ctx: Context, type: string, granteeId: string) {
			if (type === "team") await ctx.call("teams.get", { id: granteeId });
			else {
				const members: any[] = await ctx.call("organizations.members", { id: tenantSql(ctx).organizationId });
				if (!members.some(m => m.userId === granteeId)) throw notFound("organization member");
			}
		},

		async findSecret(t: TenantSql, secretId: string, includeDeleted = false, lock = false) {
			const sql = `SELECT * FROM secrets WHERE id = $1 AND organization_id = $org${lock ? " FOR UPDATE" : ""}`;
			const s = await t.byId("secret", sql, secretId);
			if (s.deleted_at && !includeDeleted) throw notFound("secret");
			return s;
		},

		dataKey(this: SecretsThis, vault: Vault): Buffer {
			const kek: MasterKey | undefined = [this.keys.current, this.keys.previous].find(
				(k: MasterKey | undefined) => k && k.id === vault.kek_id
			);
			if (!kek)
				throw unavailable(
					`the configured master key (id ${this.keys.current.id}) is not the one that wrapped this organization's data key (id ${vault.kek_id}); set MASTER_KEY_PREVIOUS`
				);
			return decrypting("data key", () =>
				unwrapKey(kek, toBuffer(vault.wrapped_key), vault.organization_id, vault.key_version)
			);
		},

		async readValue(this: SecretsThis, t: TenantSql, vault: Vault, secret: any, version: number): Promise<string> {
			const v = await t.one(
				"SELECT * FROM secret_versions WHERE secret_id = $1 AND version = $2 AND organization_id = $org",
				[secret.id, version]
			);
			if (!v) throw notFound("version");
			if (!v.ciphertext)
				throw Object.assign(notFound("version"), { message: `version ${version} was destroyed` });
			const key = this.dataKey(vault);
			const sealed = { ciphertext: toBuffer(v.ciphertext), iv: toBuffer(v.iv), authTag: toBuffer(v.auth_tag) };
			const plain = decrypting(`version ${version} of ${secret.name}`, () =>
				open(key, sealed, valueAad(t.organizationId, secret.id, version))
			);
			return plain.toString("utf8");
		},

		// Appends version n+1 (the secret row is locked by the caller) and keeps at most max_versions of them.
		async writeVersion(
			this: SecretsThis,
			t: TenantSql,
			vault: Vault,
			secret: any,
			plaintext: string
		): Promise<number> {
			const locked = await t.one(
				"SELECT current_version FROM secrets WHERE id = $1 AND organization_id = $org FOR UPDATE",
				[secret.id]
			);
			const version = locked.current_version + 1;
			const s = seal(
				this.dataKey(vault),
				Buffer.from(plaintext, "utf8"),
				valueAad(t.organizationId, secret.id, version)
			);
			await t.query(
				`INSERT INTO secret_versions (secret_id, organization_id, version, ciphertext, iv, auth_tag, key_version, created_by)
				 VALUES ($1, $org, $2, $3, $4, $5, $6, $7)`,
				[secret.id, version, s.ciphertext, s.iv, s.authTag, vault.key_version, t.auth?.userId ?? null]
			);
			await t.query(
				"UPDATE secrets SET current_version = $2, updated_at = now() WHERE id = $1 AND organization_id = $org",
				[secret.id, version]
			);
			await t.query(
				"DELETE FROM secret_versions WHERE secret_id = $1 AND version <= $2 AND organization_id = $org",
				[secret.id, version - vault.max_versions]
			);
			secret.current_version = version;
			return version;
		},

		async hasGrant(t: TenantSql, secret: any, need: Need, grantees: [string, string][]) {
			if (!grantees.length) return false;
			const params: unknown[] = [secret.id, secret.environment, secret.name];
			const who = grantees
				.map(([type, g]) => `(grantee_type = $${params.push(type)} AND grantee_id = $${params.push(g)})`)
				.join(" OR ");
			const perms = need === "read" ? "('read', 'write')" : "('write')";
			const row = await t.one(
				`SELECT 1 FROM secret_access_grants WHERE organization_id = $org
				 AND (secret_id = $1 OR (environment = $2 AND starts_with($3, name_prefix)))
				 AND permission IN ${perms} AND (expires_at IS NULL OR expires_at > now()) AND (${who}) LIMIT 1`,
				params
			);
			return !!row;
		},

		// Admins and owners manage every secret; anyone else needs a user or team grant; a service principal, a grant
		// to its service.
		async grantees(ctx: Context, auth: AuthInfo): Promise<[string, string][] | null> {
			if (auth.kind === "service") return [["service", auth.service!]];
			if (grants(auth.role, "secrets:manage")) return null;
			const teams: string[] = await ctx.call("teams.memberships", {
				userId: auth.userId,
				organizationId: auth.organizationId
			});
			return [["user", auth.userId!], ...teams.map(team => ["team", team] as [string, string])];
		},

		accessChecker(this: SecretsThis, t: TenantSql, grantees: [string, string][] | null): Access {
			if (!grantees) return async () => undefined;
			return async (secret, need) => {
				if (!(await this.hasGrant(t, secret, need, grantees)))
					throw new AuditDenied(`no ${need} grant on ${secret.environment}/${secret.name}`);
			};
		},

		// Locks (creating if needed) the organization's vault row: it orders key rotations and its writes.
		async lockVault(this: SecretsThis, t: TenantSql): Promise<Vault> {
			const existing = await t.one("SELECT * FROM vault_configurations WHERE organization_id = $org FOR UPDATE");
			if (existing) return existing;
			const wrapped = wrapKey(this.keys.current, crypto.randomBytes(32), t.organizationId, 1);
			await t.query(
				"INSERT INTO vault_configurations (organization_id, key_version, wrapped_key, kek_id) VALUES ($org, 1, $1, $2) ON CONFLICT DO NOTHING",
				[wrapped, this.keys.current.id]
			);
			return (await t.one("SELECT * FROM vault_configurations WHERE organization_id = $org FOR UPDATE"))!;
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
		},

		// A master key that matches none of the wrapped data keys stops start-up instead of failing every read.
		async checkMasterKey(this: SecretsThis) {
			const known = [this.keys.current.id, this.keys.previous?.id].filter(Boolean);
			const { rows } = await (await getDb()).query("SELECT DISTINCT kek_id FROM vault_configurations");
			const unknown = rows.map(r => r.kek_id).filter(k => !known.includes(k));
			if (unknown.length) {
				const previous = this.keys.previous ? ` (previous ${this.keys.previous.id})` : "";
				throw new Error(
					`MASTER_KEY: the data keys were wrapped with master key id ${unknown.join(", ")}, but the configured key is id ${this.keys.current.id}${previous}`
				);
			}
		}
	},

	created(this: Service) {
		(this as SecretsThis).keys = loadMasterKeys(getConfig(), moduleSettings(secretsModule)) as MasterKeys;
	},

	async started(this: Service) {
		await (this as SecretsThis).checkMasterKey();
	}
};

export default SecretsService;
