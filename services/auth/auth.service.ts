// Auth: users and their sessions (register, login, refresh rotation with reuse detection, logout, me; passwords in
// passwords.ts), and the internal `auth.resolve` that turns a bearer token or API key into { user, organization,
// role, permissions }.
import crypto from "crypto";
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getConfig } from "../../lib/config";
import { getDb, Queryable } from "../../lib/db";
import { PUBLIC, AUTHENTICATED, Role, roleRank, AuthInfo } from "../../lib/permissions";
import { authOf, permissionsFor } from "../../lib/authz";
import { conflict, forbidden, fromDbError, unauthorized } from "../../lib/errors";
import { isUuid } from "../../mixins/db.mixin";
import { slugify } from "./slug";
import { HousekeepingMixin } from "../../mixins/housekeeping.mixin";
import { digest, hashPassword, randomToken, signAccessToken, verifyAccessToken, verifyPassword } from "./credentials";
import { broadcast } from "../../lib/events/broadcast";
import * as R from "./auth.responses";
import { password, PasswordActions } from "./passwords";
import { CachedAnswersMixin } from "../../mixins/cached-answers.mixin";

const email = { type: "email", normalize: true, max: 254 };

const SESSION_PRUNE_MS = 60 * 60_000;
const publicUser = (u: any) => ({ id: u.id, email: u.email, name: u.name, createdAt: u.created_at });

interface Tokens {
	accessToken: string;
	refreshToken: string;
	expiresIn: number;
}

// What the service's handlers see as `this`.
interface AuthThis extends Service {
	issueSession(userId: string, organizationId: string | null, familyId?: string, tx?: Queryable): Promise<Tokens>;
}

const AuthService: ServiceSchema = {
	name: "auth",
	mixins: [
		HousekeepingMixin("pruneSessions", SESSION_PRUNE_MS, "prune ended sessions"),
		PasswordActions,
		// `me` is cached; auth-organizations and auth-invitations drop it on every change of an organization or a
		// membership (dropCachedAnswers).
		CachedAnswersMixin
	],
	settings: { rest: "/auth" },

	actions: {
		register: {
			rest: "POST /register",
			response: R.Registered,
			permission: PUBLIC,
			params: { $$strict: true, email, password, name: { type: "string", min: 1, max: 100, trim: true } },
			async handler(this: AuthThis, ctx: Context<{ email: string; password: string; name: string }>) {
				const { name } = ctx.params;
				const mail = ctx.params.email.toLowerCase();
				const passwordHash = await hashPassword(ctx.params.password);
				const db = await getDb();
				const { user, organization } = await db
					.transaction(async tx => {
						const user = (
							await tx.query(
								"INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING *",
								[mail, name, passwordHash]
							)
						).rows[0];
						const organization = (
							await tx.query(
								"INSERT INTO organizations (name, slug, personal, created_by) VALUES ($1, $2, true, $3) RETURNING *",
								[`${name}'s workspace`, slugify(name), user.id]
							)
						).rows[0];
						await tx.query(
							"INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, 'owner')",
							[organization.id, user.id]
						);
						return { user, organization };
					})
					.catch((err: any) => {
						throw err.code === "23505"
							? conflict("an account with this email already exists", "email")
							: err;
					});
				const tokens = await this.issueSession(user.id, organization.id);
				return {
					user: publicUser(user),
					organization: {
						id: organization.id,
						name: organization.name,
						slug: organization.slug,
						role: "owner"
					},
					...tokens
				};
			}
		},

		login: {
			rest: "POST /login",
			response: R.LoggedIn,
			permission: PUBLIC,
			params: { $$strict: true, email, password: { type: "string", min: 1, max: 200 } },
			async handler(this: AuthThis, ctx: Context<{ email: string; password: string }>) {
				const db = await getDb();
				const user = (await db.query("SELECT * FROM users WHERE email = $1", [ctx.params.email.toLowerCase()]))
					.rows[0];
				// Same answer, same work, for an unknown email and a wrong password.
				if (!(await verifyPassword(user?.password_hash, ctx.params.password)))
					throw unauthorized("invalid email or password");
				const org = (
					await db.query(
						"SELECT organization_id FROM organization_members WHERE user_id = $1 ORDER BY (role = 'owner') DESC, created_at LIMIT 1",
						[user.id]
					)
				).rows[0];
				const tokens = await this.issueSession(user.id, org?.organization_id ?? null);
				return { user: publicUser(user), defaultOrganizationId: org?.organization_id ?? null, ...tokens };
			}
		},

		// Rotation: each refresh token works once. Presenting a used one means it leaked: the whole session dies.
		refresh: {
			rest: "POST /refresh",
			response: R.Tokens,
			permission: PUBLIC,
			params: { $$strict: true, refreshToken: { type: "string", min: 10, max: 200 } },
			async handler(this: AuthThis, ctx: Context<{ refreshToken: string }>) {
				const db = await getDb();
				const outcome = await db.transaction(async tx => {
					const row = (
						await tx.query("SELECT * FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE", [
							digest(ctx.params.refreshToken)
						])
					).rows[0];
					if (!row) return { error: "invalid refresh token" };
					if (row.revoked_at) return { error: "session has ended" };
					if (row.used_at) {
						await tx.query(
							"UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
							[row.family_id]
						);
						return {
							error: "refresh token was already used; the session has been revoked",
							reused: true,
							familyId: row.family_id as string
						};
					}
					if (new Date(row.expires_at) <= new Date()) return { error: "refresh token expired" };
					await tx.query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1", [row.id]);
					return { tokens: await this.issueSession(row.user_id, row.organization_id, row.family_id, tx) };
				});
				if (outcome.reused) {
					this.logger.warn("Refresh token reuse detected; session family revoked.");
					broadcast(this.broker, "auth.session.revoked", { sessionId: outcome.familyId });
				}
				if (!outcome.tokens) throw unauthorized(outcome.error);
				return outcome.tokens;
			}
		},

		logout: {
			rest: "POST /logout",
			response: R.Ok,
			permission: AUTHENTICATED,
			async handler(this: AuthThis, ctx: Context) {
				const auth = authOf(ctx)!;
				const db = await getDb();
				const sessionId = auth.sessionId;
				if (sessionId) {
					await db.query(
						"UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
						[sessionId]
					);
					// Gateways drop cached identities and close sockets of this session.
					broadcast(this.broker, "auth.session.revoked", { sessionId });
				}
				return { ok: true };
			}
		},

		me: {
			rest: "GET /me",
			response: R.Me,
			permission: AUTHENTICATED,
			// Every signed-in page asks, and the answer changes only with the user's organizations and memberships. By
			// everything it depends on: the user, an API key's binding, the organization and role it acts with.
			cache: { keys: ["#auth.userId", "#auth.boundOrganizationId", "#auth.organizationId", "#auth.role"] },
			// It takes no parameters: none reaches the handler, so none can be missing from the key.
			params: { $$strict: "remove" },
			async handler(this: AuthThis, ctx: Context) {
				const auth = authOf(ctx)!;
				const db = await getDb();
				// The user and their organizations in one round trip (an API key sees only the one it is bound to).
				const user = (
					await db.query(
						`SELECT u.id, u.email, u.name, u.created_at, coalesce((
						   SELECT json_agg(json_build_object('id', o.id, 'name', o.name, 'slug', o.slug,
						     'personal', o.personal, 'role', m.role) ORDER BY o.created_at)
						   FROM organization_members m JOIN organizations o ON o.id = m.organization_id
						   WHERE m.user_id = u.id AND ($2::uuid IS NULL OR o.id = $2)), '[]') AS organizations
						 FROM users u WHERE u.id = $1`,
						[auth.userId, auth.boundOrganizationId ?? null],
						// Every signed-in page asks: parsed and planned once per connection.
						{ prepare: true }
					)
				).rows[0];
				if (!user) throw unauthorized();
				return {
					user: publicUser(user),
					organizations: user.organizations,
					organizationId: auth.organizationId ?? null,
					role: auth.role ?? null,
					permissions: auth.role ? permissionsFor(auth.role) : []
				};
			}
		},

		// Internal: the gateway and socket bridge turn credentials into the caller's identity in one organization.
		resolve: {
			visibility: "public",
			params: {
				$$strict: true,
				token: { type: "string", optional: true, max: 4096 },
				apiKey: { type: "string", optional: true, max: 200 },
				organizationId: { type: "string", optional: true }
			},
			async handler(
				this: AuthThis,
				ctx: Context<{ token?: string; apiKey?: string; organizationId?: string }>
			): Promise<AuthInfo & { user: any }> {
				const db = await getDb();
				const { token, apiKey } = ctx.params;
				const organizationId = ctx.params.organizationId;
				if (organizationId && !isUuid(organizationId)) throw forbidden("not a member of this organization");

				if (apiKey) {
					const key = (
						await db.query(
							`SELECT k.*, m.role AS member_role FROM api_keys k
							 JOIN organization_members m ON m.organization_id = k.organization_id AND m.user_id = k.user_id
							 WHERE k.key_hash = $1`,
							[digest(apiKey)]
						)
					).rows[0];
					if (!key || key.revoked_at || (key.expires_at && new Date(key.expires_at) <= new Date()))
						throw unauthorized("invalid API key");
					if (organizationId && organizationId !== key.organization_id)
						throw forbidden("this API key belongs to another organization");
					// A key never grants more than its owner currently has.
					const role: Role =
						key.role && roleRank(key.role) < roleRank(key.member_role) ? key.role : key.member_role;
					db.query(
						"UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
						[key.id]
					).catch(() => undefined);
					const user = (await db.query("SELECT id, email, name FROM users WHERE id = $1", [key.user_id]))
						.rows[0];
					return {
						userId: key.user_id,
						user,
						kind: "apiKey",
						organizationId: key.organization_id,
						boundOrganizationId: key.organization_id,
						role,
						permissions: permissionsFor(role),
						apiKeyId: key.id,
						expiresAt: key.expires_at ? Math.floor(new Date(key.expires_at).getTime() / 1000) : undefined
					};
				}

				const claims = token ? await verifyAccessToken(getConfig().jwtSecret, token) : null;
				if (!claims) throw unauthorized("invalid or expired token");
				const ended = (
					await db.query(
						"SELECT 1 FROM refresh_tokens WHERE family_id = $1 AND revoked_at IS NOT NULL LIMIT 1",
						[claims.sid]
					)
				).rows[0];
				if (ended) throw unauthorized("session has ended");
				const user = (await db.query("SELECT id, email, name FROM users WHERE id = $1", [claims.sub])).rows[0];
				if (!user) throw unauthorized("invalid or expired token");
				const expiresAt = claims.exp;
				const session = { userId: user.id, user, kind: "session" as const, sessionId: claims.sid, expiresAt };
				if (!organizationId) return { ...session, permissions: [] };
				const member = (
					await db.query(
						"SELECT role FROM organization_members WHERE organization_id = $1 AND user_id = $2",
						[organizationId, user.id]
					)
				).rows[0];
				if (!member) throw forbidden("not a member of this organization");
				return { ...session, organizationId, role: member.role, permissions: permissionsFor(member.role) };
			}
		}
	},

	methods: {
		// A session whose newest refresh token expired over a day ago can never be refreshed again, and its access
		// tokens have long expired: its rows (kept until then for reuse detection) leave the table.
		async pruneSessions() {
			await (
				await getDb()
			).query(
				`DELETE FROM refresh_tokens WHERE family_id IN
				 (SELECT family_id FROM refresh_tokens GROUP BY family_id HAVING max(expires_at) < now() - interval '1 day')`
			);
			await (await getDb()).query("DELETE FROM auth_password_resets WHERE expires_at < now() - interval '1 day'");
		},

		// A session is a refresh-token family; the access token names it so logout can end it at once.
		async issueSession(
			userId: string,
			organizationId: string | null,
			familyId: string = crypto.randomUUID(),
			tx?: Queryable
		): Promise<Tokens> {
			const config = getConfig();
			const refreshToken = `rt_${randomToken()}`;
			const q = tx ?? (await getDb());
			await q
				.query(
					`INSERT INTO refresh_tokens (user_id, family_id, token_hash, organization_id, expires_at)
					 VALUES ($1, $2, $3, $4, now() + ($5 || ' seconds')::interval)`,
					[userId, familyId, digest(refreshToken), organizationId, String(config.refreshTokenTtl)]
				)
				.catch((e: any) => {
					throw fromDbError(e, "session");
				});
			return {
				accessToken: await signAccessToken(
					config.jwtSecret,
					{ sub: userId, sid: familyId },
					config.accessTokenTtl
				),
				refreshToken,
				expiresIn: config.accessTokenTtl
			};
		}
	}
};

export default AuthService;
