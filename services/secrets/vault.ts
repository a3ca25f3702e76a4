// The organization's vault: its data key, wrapped by the master key, and the rotations of both. A master key that
// wraps none of the data keys stops start-up.
import crypto from "crypto";
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getConfig, moduleSettings } from "../../lib/config";
import secretsModule from "./secrets.module";
import { getDb } from "../../lib/db";
import { organizationSql, TenantSql, tenantSql } from "../../lib/db/tenant";
import { unavailable } from "../../lib/errors";
import { loadMasterKeys, MasterKey, MasterKeys, open, seal, toBuffer, unwrapKey, valueAad, wrapKey } from "./crypto";
import { broadcast } from "../../lib/events/broadcast";
import * as R from "./secrets.responses";
import { decrypting, Vault, SecretsThis } from "./secrets.types";

const VaultActions: Partial<ServiceSchema> = {
	actions: {
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

export default VaultActions;
