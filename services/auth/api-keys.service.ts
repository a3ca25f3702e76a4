// API keys: a secret shown once at creation (only its SHA-256 digest is kept), acting for its owner in one
// organization, optionally with a lower role and an expiry. Members manage their own keys; admins see and revoke all.
// A key made with a key never exceeds it: at most its role, never past its expiry, revoked with it.
import type { Context, ServiceBroker } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { DbMixin, type DbService } from "../../mixins/db.mixin";
import { assertRoleWithin, grants } from "../../lib/authz";
import { tenantSql } from "../../lib/db/tenant";
import { ROLES, Role } from "../../lib/permissions";
import { notFound } from "../../lib/errors";
import { newApiKey } from "./credentials";
import { broadcast } from "../../lib/events/broadcast";
import * as R from "./auth.responses";
import { announceChange } from "../../lib/live";

// Keys are seen by their owner and by managers: only they hear of a change.
function announceKey(broker: ServiceBroker, ctx: Context, key: Record<string, any>, action: "created" | "removed") {
	announceChange(broker, ctx, {
		entity: "auth-api-keys",
		noun: "API key",
		id: String(key.id),
		action,
		label: key.name,
		permission: "auth:api-keys-read",
		ownerId: key.user_id,
		ownerPermission: "auth:api-keys-manage"
	});
}

const FIELDS = [
	...["id", "organization_id", "user_id", "parent_id", "name", "prefix", "role"],
	...["expires_at", "last_used_at", "revoked_at", "created_at"]
];

// A key and every key made from it, at any depth.
const LINEAGE = `WITH RECURSIVE lineage AS (
	SELECT id FROM api_keys WHERE id = $1 AND organization_id = $org
	UNION SELECT k.id FROM api_keys k JOIN lineage l ON k.parent_id = l.id WHERE k.organization_id = $org)`;

const ApiKeysService: ServiceSchema = {
	name: "auth-api-keys",
	mixins: [
		DbMixin({
			table: "api_keys",
			columns: [...FIELDS, "key_hash"],
			writable: {},
			fields: FIELDS,
			tenant: true,
			entityName: "API key",
			permissions: false
		})
	],
	settings: { rest: "/auth/api-keys" },

	actions: {
		create: {
			rest: "POST /",
			response: R.NewApiKey,
			permission: "auth:api-keys-write",
			params: {
				$$strict: true,
				name: { type: "string", min: 1, max: 100, trim: true },
				role: { type: "enum", values: [...ROLES], optional: true },
				expiresInDays: {
					type: "number",
					integer: true,
					min: 1,
					max: 3650,
					optional: true,
					convert: true,
					label: "Expires"
				}
			},
			async handler(this: DbService, ctx: Context<{ name: string; role?: Role; expiresInDays?: number }>) {
				const t = tenantSql(ctx);
				const auth = t.auth!;
				if (ctx.params.role) assertRoleWithin(auth, ctx.params.role);
				// Made by a session: the owner's role unless lower is asked. Made by a key: that key's ceiling.
				const parent = auth.kind === "apiKey" ? auth : undefined;
				const days = ctx.params.expiresInDays;
				let expiresAt = days ? new Date(Date.now() + days * 86400_000) : null;
				const cap = parent?.expiresAt ? new Date(parent.expiresAt * 1000) : null;
				if (cap && (!expiresAt || expiresAt > cap)) expiresAt = cap;
				const { key, prefix, hash } = newApiKey();
				const row = await this.adapter.insert({
					organization_id: t.organizationId,
					user_id: auth.userId,
					parent_id: parent?.apiKeyId ?? null,
					name: ctx.params.name,
					prefix,
					key_hash: hash,
					role: ctx.params.role ?? parent?.role ?? null,
					expires_at: expiresAt
				});
				const json = await this.transformDocuments(ctx, {}, row);
				announceKey(this.broker, ctx, row, "created");
				// The only time the key itself is returned.
				return { ...json, key };
			}
		},

		list: {
			rest: "GET /",
			response: R.listOf(R.ApiKey),
			permission: "auth:api-keys-read",
			async handler(this: DbService, ctx: Context) {
				const auth = tenantSql(ctx).auth!;
				const query: Record<string, unknown> = grants(auth.role, "auth:api-keys-manage")
					? {}
					: { user_id: auth.userId };
				const rows = await this.adapter.find({ query: this.scope(ctx, query), sort: "-created_at" });
				return this.transformDocuments(ctx, {}, rows);
			}
		},

		revoke: {
			rest: "DELETE /:id",
			response: R.ApiKey,
			permission: "auth:api-keys-write",
			params: { id: "string" },
			async handler(this: DbService, ctx: Context<{ id: string }>) {
				const t = tenantSql(ctx);
				const auth = t.auth!;
				const key = await this.findScoped(ctx, ctx.params.id);
				const manager = grants(auth.role, "auth:api-keys-manage");
				if (key.user_id !== auth.userId && !manager) throw notFound("api_key");
				// Without the manage permission a key revokes only itself and the keys made from it.
				if (auth.kind === "apiKey" && !manager) {
					const mine = await t.one(`${LINEAGE} SELECT 1 FROM lineage WHERE id = $2`, [auth.apiKeyId, key.id]);
					if (!mine) throw notFound("api_key");
				}
				// The keys made from this one go with it.
				const rows = await t.rows(
					`${LINEAGE} UPDATE api_keys SET revoked_at = now()
					 WHERE id IN (SELECT id FROM lineage) AND organization_id = $org AND revoked_at IS NULL RETURNING id`,
					[key.id]
				);
				for (const { id } of rows) broadcast(this.broker, "auth.apikey.revoked", { apiKeyId: id });
				if (rows.length) announceKey(this.broker, ctx, key, "removed");
				return this.transformDocuments(ctx, {}, await this.adapter.findById(key.id));
			}
		}
	}
};

export default ApiKeysService;
