// API keys: a secret shown once at creation (only its SHA-256 digest is kept), acting for its owner in one
// organization, optionally with a lower role and an expiry. Members manage their own keys; admins see and revoke all.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { DbMixin } from "../../mixins/db.mixin";
import { authOf } from "../../lib/authz";
import { ROLES, Role, roleRank, grants } from "../../lib/permissions";
import { forbidden, notFound } from "../../lib/errors";
import { newApiKey } from "./credentials";

const FIELDS = ["id", "organization_id", "user_id", "name", "prefix", "role", "expires_at", "last_used_at", "revoked_at", "created_at"];

const ApiKeysService: ServiceSchema = {
	name: "apikeys",
	mixins: [
		DbMixin({
			table: "api_keys",
			columns: [...FIELDS, "key_hash"],
			writable: {},
			fields: FIELDS,
			tenant: true,
			permissions: false
		})
	],
	settings: { rest: "/auth/api-keys" },

	actions: {
		create: {
			rest: "POST /",
			permission: "apikeys:write",
			params: {
				$$strict: true,
				name: { type: "string", min: 1, max: 100, trim: true },
				role: { type: "enum", values: [...ROLES], optional: true },
				expiresInDays: { type: "number", integer: true, min: 1, max: 3650, optional: true, convert: true }
			},
			async handler(this: any, ctx: Context<{ name: string; role?: Role; expiresInDays?: number }>) {
				const auth = authOf(ctx)!;
				if (ctx.params.role && roleRank(ctx.params.role) > roleRank(auth.role!)) throw forbidden("a key cannot have a role above your own");
				const { key, prefix, hash } = newApiKey();
				const row = await this.adapter.insert({
					organization_id: auth.organizationId,
					user_id: auth.userId,
					name: ctx.params.name,
					prefix,
					key_hash: hash,
					role: ctx.params.role ?? null,
					expires_at: ctx.params.expiresInDays ? new Date(Date.now() + ctx.params.expiresInDays * 86400_000) : null
				});
				const json = await this.transformDocuments(ctx, {}, row);
				// The only time the key itself is returned.
				return { ...json, key };
			}
		},

		list: {
			rest: "GET /",
			permission: "apikeys:read",
			async handler(this: any, ctx: Context) {
				const auth = authOf(ctx)!;
				const query: Record<string, unknown> = { organization_id: auth.organizationId };
				if (!grants(auth.role, "apikeys:manage")) query.user_id = auth.userId;
				const rows = await this.adapter.find({ query, sort: "-created_at" });
				return this.transformDocuments(ctx, {}, rows);
			}
		},

		revoke: {
			rest: "DELETE /:id",
			permission: "apikeys:write",
			params: { id: "string" },
			async handler(this: any, ctx: Context<{ id: string }>) {
				const auth = authOf(ctx)!;
				const key = await this.findScoped(ctx, ctx.params.id);
				if (key.user_id !== auth.userId && !grants(auth.role, "apikeys:manage")) throw notFound("api_key");
				const row = await this.adapter.updateById(key.id, { $set: { revoked_at: key.revoked_at ?? new Date() } });
				this.broker.broadcast("auth.apikey.revoked", { apiKeyId: key.id });
				return this.transformDocuments(ctx, {}, row);
			}
		}
	}
};

export default ApiKeysService;
