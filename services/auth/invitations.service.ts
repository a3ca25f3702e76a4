// Invitations: a link to join the organization with a role, for an email that may have no account yet (it signs up
// from the link). Email delivery comes with the notifications module; until then admins copy the link. Only the
// token's digest is kept; the link works once, for that email, until it expires or is revoked.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb, Queryable } from "../../lib/db";
import { tenantSql } from "../../lib/db/tenant";
import { ACCOUNT, PUBLIC, ROLES, Role } from "../../lib/permissions";
import { assertRoleWithin, authOf } from "../../lib/authz";
import { conflict, forbidden, gone, notFound } from "../../lib/errors";
import { digest, randomToken } from "./credentials";
import * as R from "./auth.responses";
import { membershipChanged } from "./changes";

const token = { type: "string", min: 20, max: 100 };
const COLUMNS = `i.id, i.organization_id, i.email, i.role, i.created_by, u.name AS invited_by, i.expires_at,
	i.expires_at <= now() AS expired, i.created_at`;

// A pending invitation by its token, locked when `lock`: unknown, revoked or used → 404; expired → 410.
async function pending(q: Queryable, raw: string, lock = false) {
	const { rows } = await q.query(
		`SELECT i.*, o.name AS organization_name, u.name AS invited_by FROM auth_invitations i
		 JOIN organizations o ON o.id = i.organization_id LEFT JOIN users u ON u.id = i.created_by
		 WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL${lock ? " FOR UPDATE OF i" : ""}`,
		[digest(raw)]
	);
	const inv = rows[0];
	if (!inv) throw notFound("invitation (it may have been used or revoked)", "token");
	if (new Date(inv.expires_at) <= new Date()) throw gone("this invitation has expired; ask for a new one");
	return inv;
}

const InvitationsService: ServiceSchema = {
	name: "auth-invitations",
	settings: { rest: "/auth/invitations" },

	actions: {
		create: {
			rest: "POST /",
			response: R.NewInvitation,
			permission: "auth:members-manage",
			params: {
				$$strict: true,
				email: { type: "email", normalize: true, max: 254 },
				role: { type: "enum", values: [...ROLES], default: "member" },
				expiresInDays: { type: "number", integer: true, min: 1, max: 30, default: 7, convert: true }
			},
			async handler(ctx: Context<{ email: string; role: Role; expiresInDays: number }>) {
				const t = tenantSql(ctx);
				const auth = t.auth!;
				if (ctx.params.role === "owner" && auth.role !== "owner")
					throw forbidden("only an owner can invite an owner");
				assertRoleWithin(auth, ctx.params.role);
				const email = ctx.params.email.toLowerCase();
				const raw = randomToken();
				const row = await t.transaction(async tx => {
					const member = await tx.one(
						`SELECT 1 FROM organization_members m JOIN users u ON u.id = m.user_id
						 WHERE m.organization_id = $org AND u.email = $1`,
						[email]
					);
					if (member) throw conflict("this person is already a member", "email");
					// Inviting again replaces the pending invitation (and its link).
					await tx.query(
						`UPDATE auth_invitations SET revoked_at = now()
						 WHERE organization_id = $org AND email = $1 AND accepted_at IS NULL AND revoked_at IS NULL`,
						[email]
					);
					return tx.one(
						`INSERT INTO auth_invitations (organization_id, email, role, token_hash, created_by, expires_at)
						 VALUES ($org, $1, $2, $3, $4, now() + $5 * interval '1 day') RETURNING *`,
						[email, ctx.params.role, digest(raw), auth.userId, ctx.params.expiresInDays]
					);
				});
				const inviter = (await (await getDb()).query("SELECT name FROM users WHERE id = $1", [auth.userId]))
					.rows[0];
				const { token_hash: _hash, accepted_at: _a, accepted_by: _b, revoked_at: _r, ...rest } = row;
				return {
					...rest,
					invited_by: inviter?.name ?? null,
					expired: false,
					token: raw,
					path: `/invitations/${raw}`
				};
			}
		},

		list: {
			rest: "GET /",
			response: R.listOf(R.Invitation),
			permission: "auth:members-read",
			async handler(ctx: Context) {
				return tenantSql(ctx).rows(
					`SELECT ${COLUMNS} FROM auth_invitations i LEFT JOIN users u ON u.id = i.created_by
					 WHERE i.organization_id = $org AND i.accepted_at IS NULL AND i.revoked_at IS NULL
					 ORDER BY i.created_at DESC`
				);
			}
		},

		revoke: {
			rest: "DELETE /:id",
			response: R.Invitation,
			permission: "auth:members-manage",
			params: { id: "string" },
			async handler(ctx: Context<{ id: string }>) {
				const t = tenantSql(ctx);
				const row = await t.byId(
					"invitation",
					`UPDATE auth_invitations SET revoked_at = now()
					 WHERE id = $1 AND organization_id = $org AND accepted_at IS NULL AND revoked_at IS NULL RETURNING id`,
					ctx.params.id
				);
				return t.one(
					`SELECT ${COLUMNS} FROM auth_invitations i LEFT JOIN users u ON u.id = i.created_by WHERE i.id = $1
					 AND i.organization_id = $org`,
					[row.id]
				);
			}
		},

		// What the link's page shows before anyone signs in: the organization, the role, for whom.
		inspect: {
			rest: "GET /preview/:token",
			response: R.InvitationPreview,
			permission: PUBLIC,
			params: { token },
			async handler(ctx: Context<{ token: string }>) {
				const inv = await pending(await getDb(), ctx.params.token);
				return {
					organization: { id: inv.organization_id, name: inv.organization_name },
					email: inv.email,
					role: inv.role,
					invited_by: inv.invited_by ?? null,
					expires_at: inv.expires_at
				};
			}
		},

		// The signed-in user joins, if the invitation is for their email. Accepting twice is refused (404).
		accept: {
			rest: "POST /accept",
			response: R.Joined,
			permission: ACCOUNT,
			params: { $$strict: true, token },
			async handler(this: Service, ctx: Context<{ token: string }>) {
				const auth = authOf(ctx)!;
				const db = await getDb();
				const joined = await db.transaction(async tx => {
					const inv = await pending(tx, ctx.params.token, true);
					const user = (await tx.query("SELECT email FROM users WHERE id = $1", [auth.userId])).rows[0];
					if (user?.email !== inv.email)
						throw forbidden(`this invitation is for ${inv.email}; sign in with that account to accept it`);
					await tx.query(
						`INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, $3)
						 ON CONFLICT DO NOTHING`,
						[inv.organization_id, auth.userId, inv.role]
					);
					await tx.query("UPDATE auth_invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1", [
						inv.id,
						auth.userId
					]);
					const { rows } = await tx.query(
						"SELECT role FROM organization_members WHERE organization_id = $1 AND user_id = $2",
						[inv.organization_id, auth.userId]
					);
					return { organizationId: inv.organization_id as string, role: rows[0].role as Role };
				});
				// Cached identities of this user (no role here until now) and their cached auth.me are stale.
				await membershipChanged(this.broker, this.logger, {
					organizationId: joined.organizationId,
					userId: auth.userId
				});
				return joined;
			}
		}
	}
};

export default InvitationsService;
