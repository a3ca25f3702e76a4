// .env import and export of one environment, each in one audited transaction.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { TenantSql, tenantSql } from "../../lib/db/tenant";
import { invalid } from "../../lib/errors";
import { parseDotenv, serializeDotenv } from "./dotenv";
import { broadcast } from "../../lib/events/broadcast";
import * as R from "./secrets.responses";
import { environment, MAX_VALUE, Vault, SecretsThis } from "./secrets.types";

const TransferActions: Partial<ServiceSchema> = {
	actions: {
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
		}
	}
};

export default TransferActions;
