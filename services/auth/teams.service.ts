// Teams inside an organization: CRUD from DbMixin (tenant-scoped), plus membership of organization members.
import type { Context, ServiceBroker } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import * as R from "./auth.responses";
import { DbMixin, type DbService, isUuid } from "../../mixins/db.mixin";
import { notFound, conflict } from "../../lib/errors";
import { organizationSql, tenantSql } from "../../lib/db/tenant";
import { announceChange } from "../../lib/live";

// A team's members changed: pages showing the team read it again.
function announceTeam(broker: ServiceBroker, ctx: Context, team: Record<string, unknown>) {
	announceChange(broker, ctx, {
		entity: "auth-teams",
		noun: "team",
		id: String(team.id),
		action: "updated",
		label: String(team.name),
		permission: "auth:teams-read"
	});
}

const TeamsService: ServiceSchema = {
	name: "auth-teams",
	mixins: [
		DbMixin({
			table: "teams",
			columns: ["id", "organization_id", "name", "description", "created_at", "updated_at"],
			writable: {
				name: { type: "string", min: 1, max: 100, trim: true },
				description: { type: "string", max: 2000, optional: true }
			},
			fields: ["id", "organization_id", "name", "description", "created_at", "updated_at"],
			tenant: true,
			searchFields: ["name", "description"],
			permissions: { read: "auth:teams-read", write: "auth:teams-manage" },
			rest: "/auth/teams",
			live: true
		})
	],

	actions: {
		members: {
			rest: "GET /:id/members",
			response: R.listOf(R.TeamMember),
			permission: "auth:teams-read",
			params: { id: "string" },
			async handler(this: DbService, ctx: Context<{ id: string }>) {
				const team = await this.findScoped(ctx, ctx.params.id);
				return tenantSql(ctx).rows(
					`SELECT u.id AS "userId", u.email, u.name, tm.role FROM team_members tm JOIN users u ON u.id = tm.user_id
					 WHERE tm.team_id = $1 AND tm.organization_id = $org ORDER BY tm.created_at`,
					[team.id]
				);
			}
		},

		addMember: {
			rest: "POST /:id/members",
			response: R.TeamMembership,
			permission: "auth:teams-manage",
			params: {
				$$strict: true,
				id: "string",
				userId: "string",
				role: { type: "enum", values: ["lead", "member"], default: "member" }
			},
			async handler(this: DbService, ctx: Context<{ id: string; userId: string; role: string }>) {
				const team = await this.findScoped(ctx, ctx.params.id);
				if (!isUuid(ctx.params.userId)) throw notFound("organization member");
				const t = tenantSql(ctx);
				const member = await t.one(
					"SELECT 1 FROM organization_members WHERE organization_id = $org AND user_id = $1",
					[ctx.params.userId]
				);
				if (!member) throw notFound("organization member");
				const res = await t.query(
					"INSERT INTO team_members (team_id, user_id, organization_id, role) VALUES ($1, $2, $org, $3) ON CONFLICT DO NOTHING",
					[team.id, ctx.params.userId, ctx.params.role]
				);
				if (!res.rowCount) throw conflict("already a member of this team");
				await this.clearCache();
				announceTeam(this.broker, ctx, team);
				return { teamId: team.id, userId: ctx.params.userId, role: ctx.params.role };
			}
		},

		// Internal: the teams a user belongs to in an organization (grants to teams, e.g. in secrets).
		memberships: {
			visibility: "public",
			cache: { keys: ["userId", "organizationId"], ttl: 30 },
			params: { userId: "uuid", organizationId: "uuid" },
			async handler(ctx: Context<{ userId: string; organizationId: string }>) {
				// Internal: the organization is the one the calling service acts in (secrets: its caller's).
				const t = organizationSql(ctx.params.organizationId);
				const rows = await t.rows(
					"SELECT team_id FROM team_members WHERE user_id = $1 AND organization_id = $org",
					[ctx.params.userId]
				);
				return rows.map(r => r.team_id);
			}
		},

		removeMember: {
			rest: "DELETE /:id/members/:userId",
			response: R.TeamMembership,
			permission: "auth:teams-manage",
			params: { id: "string", userId: "string" },
			async handler(this: DbService, ctx: Context<{ id: string; userId: string }>) {
				const team = await this.findScoped(ctx, ctx.params.id);
				if (!isUuid(ctx.params.userId)) throw notFound("team member");
				const res = await tenantSql(ctx).query(
					"DELETE FROM team_members WHERE team_id = $1 AND user_id = $2 AND organization_id = $org",
					[team.id, ctx.params.userId]
				);
				if (!res.rowCount) throw notFound("team member");
				await this.clearCache();
				announceTeam(this.broker, ctx, team);
				return { teamId: team.id, userId: ctx.params.userId, removed: true };
			}
		}
	},

	events: {
		// Leaving the organization (or its deletion) ends team memberships too: cached memberships go on every replica.
		"auth.membership.changed"(this: DbService, ctx: Context) {
			return this.dropCache(ctx);
		}
	}
};

export default TeamsService;
