// Organizations and their memberships (roles owner, admin, member, viewer). A request acts in one organization,
// the one its credentials were resolved for; any other organization id is answered as not found.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb } from "../../lib/db";
import { TenantSql, tenantSql } from "../../lib/db/tenant";
import { ACCOUNT, AUTHENTICATED, ROLES, Role } from "../../lib/permissions";
import { assertRoleWithin, authOf, permissionsFor } from "../../lib/authz";
import { conflict, forbidden, notFound } from "../../lib/errors";
import { isUuid } from "../../mixins/db.mixin";
import { slugify } from "./slug";
import * as R from "./auth.responses";
import { membershipChanged, organizationsChanged } from "./changes";
import { announceChange, type ChangeAction } from "../../lib/live";

// The member list changed: pages showing it read it again.
function announceMember(
	ctx: Context,
	user: { id: string; name?: string | null; email?: string },
	action: ChangeAction
) {
	announceChange(ctx.broker, ctx, {
		entity: "auth-members",
		noun: "member",
		id: user.id,
		action,
		label: user.name || user.email,
		permission: "auth:members-read"
	});
}

const role = { type: "enum", values: [...ROLES] };

// The organization named by the request must be the one the caller acts in; its SQL is bound to it.
function currentOrg(ctx: Context<any>, id: string): TenantSql {
	const t = tenantSql(ctx);
	if (!isUuid(id) || id !== t.organizationId) throw notFound("organization");
	return t;
}

// Only an owner hands out or takes away the owner role.
function assertCanAssign(t: TenantSql, from: Role | undefined, to: Role) {
	const auth = t.auth!;
	if ((to === "owner" || from === "owner") && auth.role !== "owner")
		throw forbidden("only an owner can grant or change the owner role");
	assertRoleWithin(auth, to);
}

// A user's name and email, for a live notice.
async function userOf(id: string): Promise<{ id: string; name?: string | null; email?: string }> {
	const db = await getDb();
	return (await db.query("SELECT id, name, email FROM users WHERE id = $1", [id])).rows[0] ?? { id };
}

// A member's new role, or `removed`.
type MembershipResult = { userId: string; role?: Role; removed?: boolean };

// What the service's handlers and methods see as `this`.
interface OrganizationsThis extends Service {
	changeMembership(scope: TenantSql, userId: string, newRole: Role | null): Promise<MembershipResult>;
}

const OrganizationsService: ServiceSchema = {
	name: "auth-organizations",
	settings: { rest: "/auth/organizations" },

	actions: {
		create: {
			rest: "POST /",
			response: R.MyOrganization,
			permission: ACCOUNT,
			params: { $$strict: true, name: { type: "string", min: 1, max: 100, trim: true } },
			async handler(this: OrganizationsThis, ctx: Context<{ name: string }>) {
				const auth = authOf(ctx)!;
				const db = await getDb();
				const slug = slugify(ctx.params.name);
				const org = await db.transaction(async tx => {
					const org = (
						await tx.query(
							"INSERT INTO organizations (name, slug, created_by) VALUES ($1, $2, $3) RETURNING *",
							[ctx.params.name, slug, auth.userId]
						)
					).rows[0];
					await tx.query(
						"INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, 'owner')",
						[org.id, auth.userId]
					);
					return org;
				});
				await organizationsChanged(this.broker, this.logger);
				return { ...org, role: "owner" };
			}
		},

		list: {
			rest: "GET /",
			response: R.listOf(R.MyOrganizationWithPermissions),
			permission: AUTHENTICATED,
			async handler(ctx: Context) {
				const db = await getDb();
				const auth = authOf(ctx)!;
				// An API key lists only the organization it is bound to.
				const { rows } = await db.query(
					`SELECT o.*, m.role FROM organization_members m JOIN organizations o ON o.id = m.organization_id
					 WHERE m.user_id = $1 AND ($2::uuid IS NULL OR o.id = $2) ORDER BY o.created_at`,
					[auth.userId, auth.boundOrganizationId ?? null]
				);
				// What the member's role holds in each, so the UI shows exactly what the API allows.
				return rows.map(r => ({ ...r, permissions: permissionsFor(r.role) }));
			}
		},

		get: {
			rest: "GET /:id",
			response: R.MyOrganization,
			permission: "auth:organizations-read",
			params: { id: "string" },
			async handler(ctx: Context<{ id: string }>) {
				const t = currentOrg(ctx, ctx.params.id);
				const org = await t.one("SELECT * FROM organizations WHERE id = $org");
				if (!org) throw notFound("organization");
				return { ...org, role: t.auth!.role };
			}
		},

		update: {
			rest: "PATCH /:id",
			response: R.Organization,
			permission: "auth:organizations-manage",
			params: { $$strict: true, id: "string", name: { type: "string", min: 1, max: 100, trim: true } },
			async handler(this: OrganizationsThis, ctx: Context<{ id: string; name: string }>) {
				const t = currentOrg(ctx, ctx.params.id);
				const org = await t.one(
					"UPDATE organizations SET name = $1, updated_at = now() WHERE id = $org RETURNING *",
					[ctx.params.name]
				);
				await organizationsChanged(this.broker, this.logger);
				return org;
			}
		},

		remove: {
			rest: "DELETE /:id",
			response: R.Deleted,
			permission: "auth:organizations-own",
			params: { id: "string" },
			async handler(this: OrganizationsThis, ctx: Context<{ id: string }>) {
				const t = currentOrg(ctx, ctx.params.id);
				const org = await t.one("SELECT personal FROM organizations WHERE id = $org");
				if (org?.personal) throw conflict("a personal organization cannot be deleted");
				await t.query("DELETE FROM organizations WHERE id = $org");
				await membershipChanged(this.broker, this.logger, { organizationId: t.organizationId });
				return { id: t.organizationId, deleted: true };
			}
		},

		members: {
			rest: "GET /:id/members",
			response: R.listOf(R.Member),
			permission: "auth:members-read",
			params: { id: "string" },
			async handler(ctx: Context<{ id: string }>) {
				return currentOrg(ctx, ctx.params.id).rows(
					`SELECT u.id AS "userId", u.email, u.name, m.role, m.created_at AS "joinedAt" FROM organization_members m
					 JOIN users u ON u.id = m.user_id WHERE m.organization_id = $org ORDER BY m.created_at`
				);
			}
		},

		// Adds an existing user by email (an invitation for someone who already has an account).
		addMember: {
			rest: "POST /:id/members",
			response: R.AddedMember,
			permission: "auth:members-manage",
			params: {
				$$strict: true,
				id: "string",
				email: { type: "email", normalize: true },
				role: { ...role, default: "member" }
			},
			async handler(this: OrganizationsThis, ctx: Context<{ id: string; email: string; role: Role }>) {
				const t = currentOrg(ctx, ctx.params.id);
				assertCanAssign(t, undefined, ctx.params.role);
				// Users are not a tenant table: any account can be added by its email.
				const db = await getDb();
				const user = (
					await db.query("SELECT id, email, name FROM users WHERE email = $1", [
						ctx.params.email.toLowerCase()
					])
				).rows[0];
				if (!user) throw notFound("user with this email", "email");
				const res = await t.query(
					"INSERT INTO organization_members (organization_id, user_id, role) VALUES ($org, $1, $2) ON CONFLICT DO NOTHING",
					[user.id, ctx.params.role]
				);
				if (res.rowCount === 0) throw conflict("this user is already a member", "email");
				// As when joining by an invitation: identities cached without a role here are stale too.
				await membershipChanged(this.broker, this.logger, {
					organizationId: t.organizationId,
					userId: user.id
				});
				announceMember(ctx, user, "created");
				return { userId: user.id, email: user.email, name: user.name, role: ctx.params.role };
			}
		},

		updateMember: {
			rest: "PATCH /:id/members/:userId",
			response: R.MembershipChange,
			permission: "auth:members-manage",
			params: { $$strict: true, id: "string", userId: "string", role },
			async handler(this: OrganizationsThis, ctx: Context<{ id: string; userId: string; role: Role }>) {
				const result = await this.changeMembership(
					currentOrg(ctx, ctx.params.id),
					ctx.params.userId,
					ctx.params.role
				);
				announceMember(ctx, await userOf(result.userId), "updated");
				return result;
			}
		},

		removeMember: {
			rest: "DELETE /:id/members/:userId",
			response: R.MembershipChange,
			permission: "auth:members-manage",
			params: { id: "string", userId: "string" },
			async handler(this: OrganizationsThis, ctx: Context<{ id: string; userId: string }>) {
				const result = await this.changeMembership(currentOrg(ctx, ctx.params.id), ctx.params.userId, null);
				announceMember(ctx, await userOf(result.userId), "removed");
				return result;
			}
		}
	},

	methods: {
		// Changes or removes one membership; an organization always keeps at least one owner.
		async changeMembership(
			this: OrganizationsThis,
			scope: TenantSql,
			userId: string,
			newRole: Role | null
		): Promise<MembershipResult> {
			if (!isUuid(userId)) throw notFound("member");
			const result = await scope.transaction(async t => {
				const members = await t.rows(
					"SELECT user_id, role FROM organization_members WHERE organization_id = $org FOR UPDATE"
				);
				const target = members.find((m: any) => m.user_id === userId);
				if (!target) throw notFound("member");
				assertCanAssign(t, target.role, newRole ?? target.role);
				const owners = members.filter((m: any) => m.role === "owner").length;
				if (target.role === "owner" && newRole !== "owner" && owners === 1)
					throw conflict("an organization must keep at least one owner");
				if (newRole) {
					await t.query(
						"UPDATE organization_members SET role = $2 WHERE organization_id = $org AND user_id = $1",
						[userId, newRole]
					);
					return { userId, role: newRole };
				}
				await t.query("DELETE FROM organization_members WHERE organization_id = $org AND user_id = $1", [
					userId
				]);
				await t.query("DELETE FROM team_members WHERE organization_id = $org AND user_id = $1", [userId]);
				return { userId, removed: true };
			});
			// Identities cached by gateways (role, membership) and cached team memberships are stale now.
			await membershipChanged(this.broker, this.logger, { organizationId: scope.organizationId, userId });
			return result;
		}
	}
};

export default OrganizationsService;
