// Passwords: change one's own (with the current one), and reset by a single-use link. Until the notifications module
// delivers "forgot password" emails, an operator makes the link from the REPL (`auth.resetLink`) and passes it on.
// A new password ends every other session of the user: their gateways drop the identities and close the sockets.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb, Queryable } from "../../lib/db";
import { ACCOUNT, PUBLIC } from "../../lib/permissions";
import { authOf } from "../../lib/authz";
import { gone, invalid, notFound } from "../../lib/errors";
import { broadcast } from "../../lib/events/broadcast";
import { digest, hashPassword, randomToken, verifyPassword } from "./credentials";
import * as R from "./auth.responses";

export const password = { type: "string", min: 10, max: 200 };
const RESET_TTL_MINUTES = 60;

// Sets the password and ends the user's sessions but `keep` (the caller's own, when they change it themselves).
async function setPassword(svc: Service, tx: Queryable, userId: string, plain: string, keep?: string) {
	await tx.query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", [
		userId,
		await hashPassword(plain)
	]);
	const { rows } = await tx.query(
		`WITH ended AS (UPDATE refresh_tokens SET revoked_at = now()
		 WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR family_id <> $2) RETURNING family_id)
		 SELECT DISTINCT family_id FROM ended`,
		[userId, keep ?? null]
	);
	return () => {
		for (const { family_id } of rows) broadcast(svc.broker, "auth.session.revoked", { sessionId: family_id });
	};
}

export const PasswordActions: Partial<ServiceSchema> = {
	actions: {
		changePassword: {
			rest: "POST /password",
			response: R.Ok,
			permission: ACCOUNT,
			params: { $$strict: true, currentPassword: { type: "string", min: 1, max: 200 }, newPassword: password },
			async handler(this: Service, ctx: Context<{ currentPassword: string; newPassword: string }>) {
				const auth = authOf(ctx)!;
				const db = await getDb();
				const user = (await db.query("SELECT password_hash FROM users WHERE id = $1", [auth.userId])).rows[0];
				if (!(await verifyPassword(user?.password_hash, ctx.params.currentPassword)))
					throw invalid("currentPassword", "is not your current password");
				const announce = await db.transaction(tx =>
					setPassword(this, tx, auth.userId!, ctx.params.newPassword, auth.sessionId)
				);
				announce();
				return { ok: true };
			}
		},

		// Operators (REPL): a single-use link for one account, valid for an hour.
		resetLink: {
			visibility: "public",
			response: R.ResetLink,
			params: { $$strict: true, email: { type: "email", normalize: true, max: 254 } },
			async handler(ctx: Context<{ email: string }>) {
				const db = await getDb();
				const email = ctx.params.email.toLowerCase();
				const user = (await db.query("SELECT id FROM users WHERE email = $1", [email])).rows[0];
				if (!user) throw notFound("user with this email", "email");
				const token = randomToken();
				const { rows } = await db.query(
					`INSERT INTO auth_password_resets (user_id, token_hash, expires_at)
					 VALUES ($1, $2, now() + $3 * interval '1 minute') RETURNING expires_at`,
					[user.id, digest(token), RESET_TTL_MINUTES]
				);
				return { email, token, path: `/reset-password/${token}`, expiresAt: rows[0].expires_at };
			}
		},

		resetPassword: {
			rest: "POST /password/reset",
			response: R.Ok,
			permission: PUBLIC,
			params: { $$strict: true, token: { type: "string", min: 20, max: 100 }, password },
			async handler(this: Service, ctx: Context<{ token: string; password: string }>) {
				const db = await getDb();
				const announce = await db.transaction(async tx => {
					const reset = (
						await tx.query(
							"SELECT * FROM auth_password_resets WHERE token_hash = $1 AND used_at IS NULL FOR UPDATE",
							[digest(ctx.params.token)]
						)
					).rows[0];
					if (!reset) throw notFound("reset link (it may have been used already)", "token");
					if (new Date(reset.expires_at) <= new Date())
						throw gone("this reset link has expired; ask for a new one");
					await tx.query("UPDATE auth_password_resets SET used_at = now() WHERE id = $1", [reset.id]);
					return setPassword(this, tx, reset.user_id, ctx.params.password);
				});
				announce();
				return { ok: true };
			}
		}
	}
};
