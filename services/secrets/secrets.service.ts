// Secrets: organization-scoped credentials, encrypted at rest, versioned, granted and audited; the only place
// plaintext exists. People reveal values through the gateway; services resolve them with the internal `resolve`.
import crypto from "crypto";
import { Errors } from "moleculer";
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { ConfigError, getConfig, moduleSettings } from "../../lib/config";
import secretsModule from "./secrets.module";
import { acquireDb, getDb, releaseDb, Queryable } from "../../lib/db";
import { authOf, grants } from "../../lib/authz";
import { conflict, forbidden, invalid, notFound, unavailable } from "../../lib/errors";
import { isUuid } from "../../mixins/db.mixin";
import { resolveBinding } from "../../mixins/secrets-client.mixin";
import { claimedService, IDENTITY_META, IdentityError, verifierFor } from "../../lib/service-identity";
import { appendAudit, AuditEntry, verifyAudit } from "./audit";
import { DecryptError, loadMasterKeys, MasterKey, MasterKeys, open, seal, toBuffer, unwrapKey, valueAad, wrapKey } from "./crypto";
import { parseDotenv, serializeDotenv } from "./dotenv";
import { broadcast } from "../../lib/events/broadcast";

const MAX_VALUE = 65_536;
const name = { type: "string", pattern: /^[A-Za-z_][A-Za-z0-9_./-]{0,199}$/, messages: { stringPattern: "must start with a letter or _ and use letters, digits, _ . / -" } };
const environment = { type: "string", pattern: /^[a-z][a-z0-9-]{0,39}$/, messages: { stringPattern: "must be lowercase letters, digits and -" } };
const value = { type: "string", max: MAX_VALUE };
const id = { type: "string" };
const tags = { type: "array", items: { type: "string", max: 50 }, max: 20, optional: true };

// What a listing shows: names and metadata, never values or ciphertext.
const META = `s.id, s.organization_id, s.project_id, s.environment, s.name, s.description, s.tags, s.current_version,
	s.created_by, s.created_at, s.updated_at, s.deleted_at`;

interface Vault {
	organization_id: string;
	key_version: number;
	wrapped_key: Buffer;
	kek_id: string;
	environments: string[];
	max_versions: number;
	audit_seq: number;
	audit_hash: string;
}

type Need = "read" | "write";

class Denied extends Error {}

// Tampered, moved or wrongly keyed ciphertext is an integrity failure with a name, never garbage.
function decrypting<T>(what: string, fn: () => T): T {
	try {
		return fn();
	} catch (err) {
		if (err instanceof DecryptError) throw new Errors.MoleculerError(`${what} does not decrypt: ${err.message}`, 500, "DECRYPT_FAILED");
		throw err;
	}
}

const SecretsService: ServiceSchema = {
	name: "secrets",
	dependencies: ["teams"],
	settings: { rest: "/secrets" },

	actions: {
		list: {
			rest: "GET /",
			permission: "secrets:read",
			params: {
				$$strict: true,
				environment: { ...environment, optional: true },
				projectId: { type: "uuid", optional: true },
				search: { type: "string", max: 200, optional: true },
				includeDeleted: { type: "boolean", convert: true, optional: true }
			},
			async handler(this: any, ctx: Context<any>) {
				const org = authOf(ctx)!.organizationId!;
				const where = ["s.organization_id = $1"];
				const params: unknown[] = [org];
				if (ctx.params.environment) where.push(`s.environment = $${params.push(ctx.params.environment)}`);
				if (ctx.params.projectId) where.push(`s.project_id = $${params.push(ctx.params.projectId)}`);
				if (ctx.params.search) where.push(`(s.name ILIKE $${params.push(`%${ctx.params.search.replace(/[\\%_]/g, (c: string) => "\\" + c)}%`)} OR s.description ILIKE $${params.length})`);
				if (!ctx.params.includeDeleted) where.push("s.deleted_at IS NULL");
				const { rows } = await (await getDb()).query(`SELECT ${META} FROM secrets s WHERE ${where.join(" AND ")} ORDER BY s.environment, s.name LIMIT 1000`, params);
				return rows;
			}
		},

		get: {
			rest: "GET /:id",
			permission: "secrets:read",
			params: { id },
			async handler(this: any, ctx: Context<any>) {
				const db = await getDb();
				const secret = await this.findSecret(db, authOf(ctx)!.organizationId!, ctx.params.id, true);
				const versions = (
					await db.query("SELECT version, created_by, created_at, destroyed_at, key_version FROM secret_versions WHERE secret_id = $1 ORDER BY version DESC", [secret.id])
				).rows;
				return { ...this.meta(secret), versions };
			}
		},

		create: {
			retryPolicy: { enabled: false },
			rest: "POST /",
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
			async handler(this: any, ctx: Context<any>) {
				const p = ctx.params;
				const result = await this.audited(ctx, "create", `${p.environment}/${p.name}`, async (tx: Queryable, vault: Vault, access: (s: any, n: Need) => Promise<void>) => {
					this.assertEnvironment(vault, p.environment);
					await access({ environment: p.environment, name: p.name }, "write");
					const secret = (
						await tx
							.query(
								`INSERT INTO secrets (organization_id, project_id, environment, name, description, tags, created_by)
								 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
								[vault.organization_id, p.projectId ?? null, p.environment, p.name, p.description ?? "", p.tags ?? [], authOf(ctx)!.userId]
							)
							.catch((e: any) => {
								throw e.code === "23505" ? conflict(`a secret named ${p.name} already exists in ${p.environment}`, "name") : e;
							})
					).rows[0];
					const version = await this.writeVersion(tx, vault, secret, p.value, ctx);
					return { ...this.meta(secret), current_version: version };
				});
				this.announce(result);
				return result;
			}
		},

		// A new version (value), and/or new metadata. With `cas`, refused (409) unless `cas` is still the latest version.
		update: {
			retryPolicy: { enabled: false },
			rest: "PATCH /:id",
			permission: "secrets:write",
			params: {
				$$strict: true,
				id,
				value: { ...value, optional: true },
				cas: { type: "number", integer: true, min: 0, optional: true, convert: true },
				description: { type: "string", max: 1000, optional: true },
				tags
			},
			async handler(this: any, ctx: Context<any>) {
				const p = ctx.params;
				const result = await this.audited(ctx, p.value !== undefined ? "update" : "update-metadata", p.id, async (tx: Queryable, vault: Vault, access: any) => {
					const secret = await this.findSecret(tx, vault.organization_id, p.id, false, true);
					await access(secret, "write");
					if (p.cas !== undefined && p.cas !== secret.current_version)
						throw conflict(`version ${p.cas} is no longer the latest (latest is ${secret.current_version})`, "cas");
					if (p.description !== undefined || p.tags !== undefined)
						await tx.query("UPDATE secrets SET description = COALESCE($2, description), tags = COALESCE($3, tags), updated_at = now() WHERE id = $1", [
							secret.id,
							p.description ?? null,
							p.tags ?? null
						]);
					const version = p.value !== undefined ? await this.writeVersion(tx, vault, secret, p.value, ctx) : secret.current_version;
					return { ...this.meta(secret), description: p.description ?? secret.description, tags: p.tags ?? secret.tags, current_version: version };
				});
				this.announce(result);
				return result;
			}
		},

		reveal: {
			rest: "POST /:id/reveal",
			permission: "secrets:reveal",
			params: { $$strict: true, id, version: { type: "number", integer: true, min: 1, optional: true, convert: true } },
			async handler(this: any, ctx: Context<any>) {
				return this.audited(ctx, "reveal", ctx.params.id, async (tx: Queryable, vault: Vault, access: any) => {
					const secret = await this.findSecret(tx, vault.organization_id, ctx.params.id);
					await access(secret, "read");
					const version = ctx.params.version ?? secret.current_version;
					return { id: secret.id, name: secret.name, environment: secret.environment, version, value: await this.readValue(tx, vault, secret, version) };
				});
			}
		},

		// Internal: another service reads a value by name, allowed by a grant to that service. The service is the one
		// its token proves (lib/service-identity.ts), never what the request claims (ctx.caller can be anything).
		resolve: {
			visibility: "public",
			params: { $$strict: true, organizationId: "uuid", environment, name, projectId: { type: "uuid", optional: true } },
			async handler(this: any, ctx: Context<any, Record<string, unknown>>) {
				const p = ctx.params;
				const token = ctx.meta[IDENTITY_META];
				const claimed = claimedService(token);
				return this.audited(
					ctx,
					"resolve",
					`${p.environment}/${p.name}`,
					async (tx: Queryable, vault: Vault) => {
						const service = this.proveService(token, "secrets.resolve", p.organizationId, resolveBinding(p));
						const secret = (
							await tx.query(
								`SELECT * FROM secrets WHERE organization_id = $1 AND environment = $2 AND name = $3 AND deleted_at IS NULL
								 AND project_id IS NOT DISTINCT FROM $4`,
								[p.organizationId, p.environment, p.name, p.projectId ?? null]
							)
						).rows[0];
						if (!secret || !(await this.hasGrant(tx, secret, "read", [["service", service]]))) throw new Denied(`service ${service} has no read grant on ${p.environment}/${p.name}`);
						return { name: secret.name, environment: secret.environment, version: secret.current_version, value: await this.readValue(tx, vault, secret, secret.current_version) };
					},
					{ organizationId: p.organizationId, actor: { actorType: "service", actorId: claimed }, anonymous: true }
				);
			}
		},

		// Internal: the identity check for nodes that do not hold SERVICE_IDENTITY_KEY (lib/authz.ts): which service
		// the token proves for that action and organization. Each token is accepted once.
		verifyIdentity: {
			visibility: "public",
			params: {
				$$strict: true,
				token: { type: "string", max: 300 },
				action: { type: "string", max: 200 },
				organizationId: { type: "string", max: 100, optional: true },
				binding: { type: "string", max: 2000, optional: true }
			},
			handler(this: any, ctx: Context<any>) {
				const p = ctx.params;
				try {
					return { service: this.proveService(p.token, p.action, p.organizationId, p.binding) };
				} catch (err) {
					if (err instanceof Denied) throw forbidden(err.message);
					throw err;
				}
			}
		},

		rollback: {
			retryPolicy: { enabled: false },
			rest: "POST /:id/rollback",
			permission: "secrets:write",
			params: { $$strict: true, id, version: { type: "number", integer: true, min: 1, convert: true } },
			async handler(this: any, ctx: Context<any>) {
				const result = await this.audited(ctx, "rollback", ctx.params.id, async (tx: Queryable, vault: Vault, access: any) => {
					const secret = await this.findSecret(tx, vault.organization_id, ctx.params.id, false, true);
					await access(secret, "write");
					const old = await this.readValue(tx, vault, secret, ctx.params.version);
					const version = await this.writeVersion(tx, vault, secret, old, ctx);
					return { ...this.meta(secret), current_version: version, rolledBackTo: ctx.params.version };
				});
				this.announce(result);
				return result;
			}
		},

		remove: {
			rest: "DELETE /:id",
			permission: "secrets:manage",
			params: { id },
			async handler(this: any, ctx: Context<any>) {
				const result = await this.audited(ctx, "delete", ctx.params.id, async (tx: Queryable, vault: Vault) => {
					const secret = await this.findSecret(tx, vault.organization_id, ctx.params.id, false, true);
					await tx.query("UPDATE secrets SET deleted_at = now(), updated_at = now() WHERE id = $1", [secret.id]);
					return { ...this.meta(secret), deleted: true };
				});
				this.announce(result);
				return result;
			}
		},

		restore: {
			rest: "POST /:id/restore",
			permission: "secrets:manage",
			params: { id },
			async handler(this: any, ctx: Context<any>) {
				const result = await this.audited(ctx, "restore", ctx.params.id, async (tx: Queryable, vault: Vault) => {
					const secret = await this.findSecret(tx, vault.organization_id, ctx.params.id, true, true);
					if (!secret.deleted_at) throw conflict("secret is not deleted");
					await tx.query("UPDATE secrets SET deleted_at = NULL, updated_at = now() WHERE id = $1", [secret.id]).catch((e: any) => {
						throw e.code === "23505" ? conflict("another secret with this name exists now") : e;
					});
					return { ...this.meta(secret), deleted_at: null };
				});
				this.announce(result);
				return result;
			}
		},

		// The version's ciphertext is erased; its number stays in the history as destroyed.
		destroyVersion: {
			rest: "DELETE /:id/versions/:version",
			permission: "secrets:manage",
			params: { id, version: { type: "number", integer: true, min: 1, convert: true } },
			async handler(this: any, ctx: Context<any>) {
				const result = await this.audited(ctx, "destroy-version", `${ctx.params.id}@${ctx.params.version}`, async (tx: Queryable, vault: Vault) => {
					const secret = await this.findSecret(tx, vault.organization_id, ctx.params.id, true, true);
					const r = await tx.query(
						"UPDATE secret_versions SET ciphertext = NULL, iv = NULL, auth_tag = NULL, destroyed_at = now() WHERE secret_id = $1 AND version = $2 AND destroyed_at IS NULL",
						[secret.id, ctx.params.version]
					);
					if (!r.rowCount) throw notFound("version");
					return { ...this.meta(secret), destroyedVersion: ctx.params.version };
				});
				this.announce(result);
				return result;
			}
		},

		grants: {
			rest: "GET /grants",
			permission: "secrets:manage",
			params: { secretId: { type: "string", optional: true } },
			async handler(this: any, ctx: Context<any>) {
				const org = authOf(ctx)!.organizationId!;
				const params: unknown[] = [org];
				let sql = "SELECT * FROM secret_access_grants WHERE organization_id = $1";
				if (ctx.params.secretId) {
					if (!isUuid(ctx.params.secretId)) return [];
					sql += ` AND secret_id = $${params.push(ctx.params.secretId)}`;
				}
				return (await (await getDb()).query(sql + " ORDER BY created_at", params)).rows;
			}
		},

		grant: {
			retryPolicy: { enabled: false },
			rest: "POST /grants",
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
			async handler(this: any, ctx: Context<any>) {
				const p = ctx.params;
				if (!!p.secretId === (p.namePrefix != null && !!p.environment)) throw invalid("secretId", "give either secretId, or environment and namePrefix");
				if (p.expiresAt && p.expiresAt <= new Date()) throw invalid("expiresAt", "must be in the future");
				if (p.granteeType !== "service" && !isUuid(p.granteeId)) throw invalid("granteeId", "must be a user or team id");
				// Other services are called before the transaction: embedded (PGlite, one connection) they would wait for it.
				if (p.granteeType !== "service") await this.assertGrantee(ctx, p.granteeType, p.granteeId);
				const result = await this.audited(ctx, "grant", p.secretId ?? `${p.environment}/${p.namePrefix}*`, async (tx: Queryable, vault: Vault) => {
					if (p.secretId) await this.findSecret(tx, vault.organization_id, p.secretId, true);
					else this.assertEnvironment(vault, p.environment);
					return (
						await tx.query(
							`INSERT INTO secret_access_grants (organization_id, secret_id, environment, name_prefix, permission, grantee_type, grantee_id, expires_at, created_by)
							 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
							[vault.organization_id, p.secretId ?? null, p.secretId ? null : p.environment, p.secretId ? null : p.namePrefix, p.permission, p.granteeType, p.granteeId, p.expiresAt ?? null, authOf(ctx)!.userId]
						)
					).rows[0];
				});
				broadcast(this.broker, "secrets.changed", { organizationId: result.organization_id, grant: result.id });
				return result;
			}
		},

		revokeGrant: {
			rest: "DELETE /grants/:grantId",
			permission: "secrets:manage",
			params: { grantId: "string" },
			async handler(this: any, ctx: Context<any>) {
				const result = await this.audited(ctx, "revoke-grant", ctx.params.grantId, async (tx: Queryable, vault: Vault) => {
					if (!isUuid(ctx.params.grantId)) throw notFound("grant");
					const r = await tx.query("DELETE FROM secret_access_grants WHERE id = $1 AND organization_id = $2 RETURNING *", [ctx.params.grantId, vault.organization_id]);
					if (!r.rowCount) throw notFound("grant");
					return r.rows[0];
				});
				broadcast(this.broker, "secrets.changed", { organizationId: result.organization_id, grant: result.id });
				return { id: result.id, revoked: true };
			}
		},

		audit: {
			rest: "GET /audit",
			permission: "secrets:manage",
			params: { limit: { type: "number", integer: true, min: 1, max: 500, default: 100, convert: true }, before: { type: "number", integer: true, min: 1, optional: true, convert: true } },
			async handler(ctx: Context<any>) {
				const org = authOf(ctx)!.organizationId!;
				const { rows } = await (await getDb()).query(
					`SELECT seq, actor_type, actor_id, action, target, outcome, request_id, details, created_at FROM secret_audit_logs
					 WHERE organization_id = $1 AND ($2::bigint IS NULL OR seq < $2) ORDER BY seq DESC LIMIT $3`,
					[org, ctx.params.before ?? null, ctx.params.limit]
				);
				return rows;
			}
		},

		"audit.verify": {
			rest: "POST /audit/verify",
			permission: "secrets:manage",
			async handler(ctx: Context) {
				return verifyAudit(await getDb(), authOf(ctx)!.organizationId!);
			}
		},

		configure: {
			rest: "PATCH /settings",
			permission: "secrets:manage",
			params: { $$strict: true, environments: { type: "array", items: environment, min: 1, max: 50, optional: true }, maxVersions: { type: "number", integer: true, min: 1, max: 1000, optional: true, convert: true } },
			async handler(this: any, ctx: Context<any>) {
				return this.audited(ctx, "configure", null, async (tx: Queryable, vault: Vault) => {
					const envs = ctx.params.environments ? [...new Set<string>(ctx.params.environments)] : vault.environments;
					await tx.query("UPDATE vault_configurations SET environments = $2, max_versions = $3 WHERE organization_id = $1", [vault.organization_id, envs, ctx.params.maxVersions ?? vault.max_versions]);
					return { environments: envs, maxVersions: ctx.params.maxVersions ?? vault.max_versions };
				});
			}
		},

		settings: {
			rest: "GET /settings",
			permission: "secrets:read",
			async handler(this: any, ctx: Context) {
				const db = await getDb();
				const org = authOf(ctx)!.organizationId!;
				const row = (await db.query("SELECT environments, max_versions, key_version, rotated_at FROM vault_configurations WHERE organization_id = $1", [org])).rows[0];
				return row
					? { environments: row.environments, maxVersions: row.max_versions, keyVersion: row.key_version, rotatedAt: row.rotated_at }
					: { environments: ["development", "staging", "production"], maxVersions: 50, keyVersion: null, rotatedAt: null };
			}
		},

		import: {
			retryPolicy: { enabled: false },
			rest: "POST /import",
			permission: "secrets:manage",
			params: { $$strict: true, environment, content: { type: "string", max: 1_000_000 }, overwrite: { type: "boolean", default: false } },
			async handler(this: any, ctx: Context<any>) {
				const { entries, errors } = parseDotenv(ctx.params.content);
				if (errors.length) throw invalid("content", `line ${errors[0].line}: ${errors[0].message}`);
				const result = await this.audited(ctx, "import", ctx.params.environment, async (tx: Queryable, vault: Vault) => {
					this.assertEnvironment(vault, ctx.params.environment);
					const out = { created: [] as string[], updated: [] as string[], skipped: [] as string[] };
					for (const e of entries) {
						if (e.value.length > MAX_VALUE) throw invalid("content", `${e.name}: value too long`);
						const existing = (
							await tx.query("SELECT * FROM secrets WHERE organization_id = $1 AND environment = $2 AND name = $3 AND project_id IS NULL FOR UPDATE", [
								vault.organization_id,
								ctx.params.environment,
								e.name
							])
						).rows[0];
						if (existing && existing.deleted_at === null && !ctx.params.overwrite) {
							out.skipped.push(e.name);
							continue;
						}
						const secret =
							existing ??
							(
								await tx.query("INSERT INTO secrets (organization_id, environment, name, created_by) VALUES ($1, $2, $3, $4) RETURNING *", [
									vault.organization_id,
									ctx.params.environment,
									e.name,
									authOf(ctx)!.userId
								])
							).rows[0];
						if (existing?.deleted_at) await tx.query("UPDATE secrets SET deleted_at = NULL WHERE id = $1", [existing.id]);
						await this.writeVersion(tx, vault, secret, e.value, ctx);
						(existing ? out.updated : out.created).push(e.name);
					}
					return out;
				});
				broadcast(this.broker, "secrets.changed", { organizationId: authOf(ctx)!.organizationId!, environment: ctx.params.environment });
				return result;
			}
		},

		export: {
			rest: "POST /export",
			permission: "secrets:manage",
			params: { $$strict: true, environment },
			async handler(this: any, ctx: Context<any>) {
				return this.audited(ctx, "export", ctx.params.environment, async (tx: Queryable, vault: Vault) => {
					const { rows } = await tx.query("SELECT * FROM secrets WHERE organization_id = $1 AND environment = $2 AND deleted_at IS NULL AND project_id IS NULL ORDER BY name", [
						vault.organization_id,
						ctx.params.environment
					]);
					const entries = [];
					for (const s of rows) entries.push({ name: s.name, value: await this.readValue(tx, vault, s, s.current_version) });
					return { environment: ctx.params.environment, count: entries.length, content: serializeDotenv(entries) };
				});
			}
		},

		// Re-encrypts every version of the organization under a new data key, in one transaction.
		rotateDataKey: {
			retryPolicy: { enabled: false },
			rest: "POST /rotate-data-key",
			permission: "secrets:own",
			async handler(this: any, ctx: Context) {
				const result = await this.audited(ctx, "rotate-data-key", null, async (tx: Queryable, vault: Vault) => {
					const oldKey = this.dataKey(vault);
					const newKey = crypto.randomBytes(32);
					const next = vault.key_version + 1;
					const { rows } = await tx.query("SELECT id, secret_id, version, ciphertext, iv, auth_tag FROM secret_versions WHERE organization_id = $1 AND ciphertext IS NOT NULL", [
						vault.organization_id
					]);
					for (const v of rows) {
						const aad = valueAad(vault.organization_id, v.secret_id, v.version);
						const plain = decrypting(`version ${v.version} of secret ${v.secret_id}`, () => open(oldKey, { ciphertext: toBuffer(v.ciphertext), iv: toBuffer(v.iv), authTag: toBuffer(v.auth_tag) }, aad));
						const s = seal(newKey, plain, aad);
						await tx.query("UPDATE secret_versions SET ciphertext = $2, iv = $3, auth_tag = $4, key_version = $5 WHERE id = $1", [v.id, s.ciphertext, s.iv, s.authTag, next]);
					}
					await tx.query("UPDATE vault_configurations SET key_version = $2, wrapped_key = $3, kek_id = $4, rotated_at = now() WHERE organization_id = $1", [
						vault.organization_id,
						next,
						wrapKey(this.keys.current, newKey, vault.organization_id, next),
						this.keys.current.id
					]);
					vault.key_version = next;
					return { keyVersion: next, reencryptedVersions: rows.length };
				});
				broadcast(this.broker, "secrets.changed", { organizationId: authOf(ctx)!.organizationId! });
				return result;
			}
		},

		// Operators (REPL): after setting MASTER_KEY to the new key and MASTER_KEY_PREVIOUS to the old one,
		// re-wrap every organization's data key under the new master key. Values are not touched.
		rotateMasterKey: {
			visibility: "public",
			async handler(this: any) {
				const db = await getDb();
				const { rows } = await db.query("SELECT organization_id FROM vault_configurations WHERE kek_id <> $1", [this.keys.current.id]);
				for (const { organization_id } of rows)
					await db.transaction(async tx => {
						const vault: Vault = (await tx.query("SELECT * FROM vault_configurations WHERE organization_id = $1 FOR UPDATE", [organization_id])).rows[0];
						const dek = this.dataKey(vault);
						await tx.query("UPDATE vault_configurations SET wrapped_key = $2, kek_id = $3, rotated_at = now() WHERE organization_id = $1", [
							organization_id,
							wrapKey(this.keys.current, dek, organization_id, vault.key_version),
							this.keys.current.id
						]);
						await appendAudit(tx, organization_id, vault, { actorType: "system", action: "rotate-master-key", outcome: "success", details: { kekId: this.keys.current.id } });
					});
				return { rewrapped: rows.length, kekId: this.keys.current.id };
			}
		}
	},

	methods: {
		meta(secret: any) {
			const { organization_id, project_id, environment, name, description, tags, current_version, created_by, created_at, updated_at, deleted_at, id } = secret;
			return { id, organization_id, project_id, environment, name, description, tags, current_version, created_by, created_at, updated_at, deleted_at };
		},

		announce(this: any, result: any) {
			// Clients drop cached values of this secret; the value itself never travels in an event.
			broadcast(this.broker, "secrets.changed", { organizationId: result.organization_id, secretId: result.id, environment: result.environment, name: result.name });
		},

		assertEnvironment(vault: Vault, env: string) {
			if (!vault.environments.includes(env)) throw invalid("environment", `"${env}" is not one of this organization's environments (${vault.environments.join(", ")})`);
		},

		async assertGrantee(this: any, ctx: Context, type: string, granteeId: string) {
			const org = authOf(ctx)!.organizationId;
			if (type === "team") await ctx.call("teams.get", { id: granteeId });
			else {
				const members: any[] = await ctx.call("organizations.members", { id: org });
				if (!members.some(m => m.userId === granteeId)) throw notFound("organization member");
			}
		},

		async findSecret(this: any, q: Queryable, org: string, secretId: string, includeDeleted = false, lock = false) {
			if (!isUuid(secretId)) throw notFound("secret");
			const s = (await q.query(`SELECT * FROM secrets WHERE id = $1 AND organization_id = $2${lock ? " FOR UPDATE" : ""}`, [secretId, org])).rows[0];
			if (!s || (s.deleted_at && !includeDeleted)) throw notFound("secret");
			return s;
		},

		dataKey(this: any, vault: Vault): Buffer {
			const kek: MasterKey | undefined = [this.keys.current, this.keys.previous].find((k: MasterKey | undefined) => k && k.id === vault.kek_id);
			if (!kek) throw unavailable(`the configured master key (id ${this.keys.current.id}) is not the one that wrapped this organization's data key (id ${vault.kek_id}); set MASTER_KEY_PREVIOUS`);
			return decrypting("data key", () => unwrapKey(kek, toBuffer(vault.wrapped_key), vault.organization_id, vault.key_version));
		},

		async readValue(this: any, tx: Queryable, vault: Vault, secret: any, version: number): Promise<string> {
			const v = (await tx.query("SELECT * FROM secret_versions WHERE secret_id = $1 AND version = $2", [secret.id, version])).rows[0];
			if (!v) throw notFound("version");
			if (!v.ciphertext) throw Object.assign(notFound("version"), { message: `version ${version} was destroyed` });
			const key = this.dataKey(vault);
			const plain = decrypting(`version ${version} of ${secret.name}`, () =>
				open(key, { ciphertext: toBuffer(v.ciphertext), iv: toBuffer(v.iv), authTag: toBuffer(v.auth_tag) }, valueAad(vault.organization_id, secret.id, version))
			);
			return plain.toString("utf8");
		},

		// Appends version n+1 (the secret row is locked by the caller) and keeps at most max_versions of them.
		async writeVersion(this: any, tx: Queryable, vault: Vault, secret: any, plaintext: string, ctx: Context): Promise<number> {
			const current = (await tx.query("SELECT current_version FROM secrets WHERE id = $1 FOR UPDATE", [secret.id])).rows[0].current_version;
			const version = current + 1;
			const s = seal(this.dataKey(vault), Buffer.from(plaintext, "utf8"), valueAad(vault.organization_id, secret.id, version));
			await tx.query(
				`INSERT INTO secret_versions (secret_id, organization_id, version, ciphertext, iv, auth_tag, key_version, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				[secret.id, vault.organization_id, version, s.ciphertext, s.iv, s.authTag, vault.key_version, authOf(ctx)?.userId ?? null]
			);
			await tx.query("UPDATE secrets SET current_version = $2, updated_at = now() WHERE id = $1", [secret.id, version]);
			await tx.query("DELETE FROM secret_versions WHERE secret_id = $1 AND version <= $2", [secret.id, version - vault.max_versions]);
			secret.current_version = version;
			return version;
		},

		async hasGrant(tx: Queryable, secret: any, need: Need, grantees: [string, string][]) {
			if (!grantees.length) return false;
			const params: unknown[] = [secret.organization_id, secret.id, secret.environment, secret.name];
			const who = grantees.map(([t, g]) => `(grantee_type = $${params.push(t)} AND grantee_id = $${params.push(g)})`).join(" OR ");
			const perms = need === "read" ? "('read', 'write')" : "('write')";
			const { rows } = await tx.query(
				`SELECT 1 FROM secret_access_grants WHERE organization_id = $1
				 AND (secret_id = $2 OR (environment = $3 AND starts_with($4, name_prefix)))
				 AND permission IN ${perms} AND (expires_at IS NULL OR expires_at > now()) AND (${who}) LIMIT 1`,
				params
			);
			return rows.length > 0;
		},

		// The service a token proves, or Denied (audited, then 403).
		proveService(this: any, token: unknown, action: string, organizationId?: string, binding?: string): string {
			try {
				return this.identity.verify(token, action, organizationId ?? "", binding ?? "");
			} catch (err) {
				if (err instanceof IdentityError) throw new Denied(`${err.message} (${err.claimed})`);
				throw err;
			}
		},

		// Admins and owners manage every secret; anyone else needs a user or team grant; a service principal, a grant
		// to its service.
		async grantees(ctx: Context): Promise<[string, string][] | null> {
			const auth = authOf(ctx)!;
			if (auth.kind === "service") return [["service", auth.service!]];
			if (grants(auth.role, "secrets:manage")) return null;
			return [
				["user", auth.userId!],
				...((await ctx.call("teams.memberships", { userId: auth.userId, organizationId: auth.organizationId })) as string[]).map(t => ["team", t] as [string, string])
			];
		},

		accessChecker(this: any, ctx: Context, tx: Queryable, grantees: [string, string][] | null) {
			const auth = authOf(ctx)!;
			if (!grantees) return async () => undefined;
			return async (secret: any, need: Need) => {
				if (!(await this.hasGrant(tx, { organization_id: auth.organizationId, ...secret }, need, grantees)))
					throw new Denied(`no ${need} grant on ${secret.environment}/${secret.name}`);
			};
		},

		// Locks (creating if needed) the organization's vault row: it orders the audit chain and key rotations.
		async lockVault(this: any, tx: Queryable, org: string): Promise<Vault> {
			const existing = (await tx.query("SELECT * FROM vault_configurations WHERE organization_id = $1 FOR UPDATE", [org])).rows[0];
			if (existing) return existing;
			const dek = crypto.randomBytes(32);
			await tx.query("INSERT INTO vault_configurations (organization_id, key_version, wrapped_key, kek_id) VALUES ($1, 1, $2, $3) ON CONFLICT DO NOTHING", [
				org,
				wrapKey(this.keys.current, dek, org, 1),
				this.keys.current.id
			]);
			return (await tx.query("SELECT * FROM vault_configurations WHERE organization_id = $1 FOR UPDATE", [org])).rows[0];
		},

		// Runs op in a transaction with the audit entry of its outcome. If the entry cannot be written, the
		// operation fails with it. A denied attempt is recorded in a transaction of its own, then refused.
		async audited(this: any, ctx: Context, action: string, target: string | null, op: (tx: Queryable, vault: Vault, access: any) => Promise<any>, opts: { organizationId?: string; actor?: Pick<AuditEntry, "actorType" | "actorId">; anonymous?: boolean } = {}) {
			// An internal call (resolve) ignores whatever principal its caller's meta claims: its op decides access.
			const auth = opts.anonymous ? undefined : authOf(ctx);
			const org = opts.organizationId ?? auth?.organizationId;
			if (!org) throw forbidden("no organization selected");
			const byService = auth?.kind === "service";
			const actor = opts.actor ?? {
				actorType: byService ? ("service" as const) : ("user" as const),
				actorId: (byService ? auth!.service : auth?.userId) ?? null
			};
			const entry = (outcome: AuditEntry["outcome"], details?: Record<string, unknown>): AuditEntry => ({ ...actor, action, target, outcome, requestId: ctx.requestID, details });
			const db = await getDb();
			const grantees = auth ? await this.grantees(ctx) : null;
			try {
				return await db.transaction(async tx => {
					const vault = await this.lockVault(tx, org);
					const result = await op(tx, vault, auth ? this.accessChecker(ctx, tx, grantees) : undefined);
					await appendAudit(tx, org, vault, entry("success", result?.current_version ? { version: result.current_version } : undefined));
					return result;
				});
			} catch (err: any) {
				if (!(err instanceof Denied)) throw err;
				await db.transaction(async tx => appendAudit(tx, org, await this.lockVault(tx, org), entry("denied", { reason: err.message })));
				throw forbidden(err.message);
			}
		},

		// A master key that matches none of the wrapped data keys stops start-up instead of failing every read.
		async checkMasterKey(this: any) {
			const db = await getDb();
			const known = [this.keys.current.id, this.keys.previous?.id].filter(Boolean);
			const { rows } = await db.query("SELECT DISTINCT kek_id FROM vault_configurations");
			const unknown = rows.map(r => r.kek_id).filter(k => !known.includes(k));
			if (unknown.length)
				throw new Error(
					`MASTER_KEY: the data keys were wrapped with master key id ${unknown.join(", ")}, but the configured key is id ${this.keys.current.id}${this.keys.previous ? ` (previous ${this.keys.previous.id})` : ""}`
				);
		}
	},

	created(this: any) {
		const config = getConfig();
		this.keys = loadMasterKeys(config, moduleSettings(secretsModule)) as MasterKeys;
		// Secrets issues and checks every service's identity: without the root it could tell no service from another.
		if (!config.serviceIdentityKey)
			throw new ConfigError("SERVICE_IDENTITY_KEY", "is required on a node that runs secrets (32+ characters)");
		this.identity = verifierFor(config.serviceIdentityKey);
	},

	async started(this: any) {
		await acquireDb();
		await this.checkMasterKey();
	},

	async stopped() {
		await releaseDb();
	}
};

export default SecretsService;
