// Environments side by side: how many secrets each holds, and a comparison of two (which names each has, and
// whether their values match, decided inside the service so no value leaves it). Comparing reads values: it is
// audited, and a value the caller has no read grant on is compared as unknown.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import type { TenantSql } from "../../lib/db/tenant";
import { tenantSql } from "../../lib/db/tenant";
import { invalid } from "../../lib/errors";
import * as R from "./secrets.responses";
import { environment, Access, SecretsThis, Vault } from "./secrets.types";

type Row = { name: string; versions: Record<string, number | null>; same: boolean | null };

const EnvironmentActions: Partial<ServiceSchema> = {
	actions: {
		environments: {
			rest: "GET /environments",
			response: R.listOf(R.EnvironmentCount),
			permission: "secrets:read",
			async handler(this: SecretsThis, ctx: Context) {
				const t = tenantSql(ctx);
				// The vault's environments as its settings say (their default included).
				const { environments } = (await this.readSettings(t)) as { environments: string[] };
				const counts = await t.rows(
					`SELECT environment, count(*)::int AS count, max(updated_at) AS updated_at FROM secrets
					 WHERE organization_id = $org AND deleted_at IS NULL AND project_id IS NULL GROUP BY environment`
				);
				const byEnv = new Map(counts.map(c => [c.environment, c]));
				return environments.map(environment => ({
					environment,
					count: byEnv.get(environment)?.count ?? 0,
					updated_at: byEnv.get(environment)?.updated_at ?? null
				}));
			}
		},

		compare: {
			rest: "GET /compare",
			response: R.Comparison,
			permission: "secrets:read",
			params: { $$strict: true, from: environment, to: environment },
			async handler(this: SecretsThis, ctx: Context<{ from: string; to: string }>) {
				const { from, to } = ctx.params;
				if (from === to) throw invalid("to", "choose an environment other than the one compared with");
				const target = `${from}…${to}`;
				return this.audited(ctx, "compare", target, async (t: TenantSql, vault: Vault, access: Access) => {
					this.assertEnvironment(vault, from);
					this.assertEnvironment(vault, to);
					const secrets = await t.rows(
						`SELECT * FROM secrets WHERE organization_id = $org AND environment = ANY($1) AND deleted_at IS NULL
						 AND project_id IS NULL ORDER BY name`,
						[[from, to]]
					);
					const rows = new Map<string, Row>();
					const pairs = new Map<string, Record<string, any>>();
					for (const s of secrets) {
						const row = rows.get(s.name) ?? {
							name: s.name,
							versions: { [from]: null, [to]: null },
							same: null
						};
						row.versions[s.environment] = s.current_version;
						rows.set(s.name, row);
						pairs.set(s.name, { ...pairs.get(s.name), [s.environment]: s });
					}
					for (const [name, pair] of pairs) {
						if (!pair[from] || !pair[to]) continue;
						const readable = await Promise.all(
							[pair[from], pair[to]].map(s =>
								access(s, "read").then(
									() => true,
									() => false
								)
							)
						);
						if (!readable.every(Boolean)) continue;
						const [a, b] = [pair[from], pair[to]];
						rows.get(name)!.same =
							(await this.readValue(t, vault, a, a.current_version)) ===
							(await this.readValue(t, vault, b, b.current_version));
					}
					return { environments: [from, to], rows: [...rows.values()] };
				});
			}
		}
	}
};

export default EnvironmentActions;
