// Grants: who besides admins may read or write which secrets (one secret, or an environment and a name prefix), and
// the check every access goes through.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { isUuid, TenantSql, tenantSql, where } from "../../lib/db/tenant";
import { grants } from "../../lib/authz";
import type { AuthInfo } from "../../lib/permissions";
import { invalid, notFound } from "../../lib/errors";
import { AuditDenied } from "../../mixins/audit.mixin";
import { broadcast } from "../../lib/events/broadcast";
import { announceChange, type ChangeAction } from "../../lib/live";
import * as R from "./secrets.responses";
import { environment, Vault, Access, Need, SecretsThis } from "./secrets.types";

// Who may do what changed: pages offering actions read the caller's access again. Names a prefix, never a value.
function announceGrant(this: SecretsThis, grant: any, ctx: Context, action: ChangeAction) {
	announceChange(this.broker, ctx, {
		organizationId: grant.organization_id,
		entity: "secret-grants",
		noun: `${grant.permission} grant`,
		id: grant.id,
		action,
		label: grant.secret_id ? undefined : `${grant.environment}/${grant.name_prefix}*`,
		permission: "secrets:read"
	});
}

const GrantActions: Partial<ServiceSchema> = {
	actions: {
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
				const rows = await t.rows(
					`SELECT g.secret_id AS "secretId", COALESCE(g.environment, s.environment) AS environment,
					 COALESCE(g.name_prefix, s.name) AS "namePrefix", g.secret_id IS NOT NULL AS exact, g.permission,
					 g.expires_at AS "expiresAt"
					 FROM secret_access_grants g LEFT JOIN secrets s ON s.id = g.secret_id AND s.organization_id = $org
					 WHERE g.organization_id = $org AND (g.expires_at IS NULL OR g.expires_at > now()) AND (${who})
					 ORDER BY environment, "namePrefix"`,
					params
				);
				return { all: false, permissions, grants: rows };
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
				announceGrant.call(this, result, ctx, "created");
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
				announceGrant.call(this, result, ctx, "removed");
				return { id: result.id, revoked: true };
			}
		}
	},

	methods: {
		async assertGrantee(ctx: Context, type: string, granteeId: string) {
			if (type === "team") await ctx.call("auth-teams.get", { id: granteeId });
			else {
				const members: any[] = await ctx.call("auth-organizations.members", {
					id: tenantSql(ctx).organizationId
				});
				if (!members.some(m => m.userId === granteeId)) throw notFound("organization member");
			}
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
			const teams: string[] = await ctx.call("auth-teams.memberships", {
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
		}
	}
};

export default GrantActions;
