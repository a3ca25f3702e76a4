// A secret's values: encrypted versions, appended on every write and kept up to the vault's max_versions.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { TenantSql } from "../../lib/db/tenant";
import { notFound } from "../../lib/errors";
import { open, seal, toBuffer, valueAad } from "./crypto";
import * as R from "./secrets.responses";
import { id, decrypting, Vault, Access, SecretsThis } from "./secrets.types";

const VersionActions: Partial<ServiceSchema> = {
	actions: {
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
				this.announce(result);
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
				this.announce(result);
				return result;
			}
		}
	},

	methods: {
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
		}
	}
};

export default VersionActions;
