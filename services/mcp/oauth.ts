// OAuth for HTTP MCP servers that ask for it (a 401 with OAuth metadata). The platform is the OAuth client: an
// admin's Authorize (`mcp.authorize`) registers it with the authorization server (dynamic client registration, or the
// server's `oauth_client_id` and secret) and answers the URL the browser goes to; the authorization server sends the
// browser back to `GET /api/mcp/oauth/callback`, which exchanges the code (PKCE) and makes the server usable. Tokens,
// refresh tokens, the client's secret and the verifier are kept in the secrets service only (`mcp/oauth/<server id>`,
// oauth-provider.ts); pooled connections refresh the tokens themselves when the server answers 401.
import crypto from "crypto";
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getConfig } from "../../lib/config";
import { getDb } from "../../lib/db";
import { organizationSql, tenantSql } from "../../lib/db/tenant";
import { conflict, ExternalFailure } from "../../lib/errors";
import { announceChange } from "../../lib/live";
import { PUBLIC } from "../../lib/permissions";
import { redact } from "../../lib/redact";
import { resolveBinding, type SecretRef } from "../../mixins/secrets-client.mixin";
import { egressFetch } from "../../lib/egress-fetch";
import { McpOAuthProvider } from "./oauth-provider";
import { McpAuthorize } from "./mcp.responses";
import type { McpThis } from "./mcp.types";
import type { ServerRow } from "./state";

// How long an authorization started with Authorize may take to come back.
const PENDING_MS = 10 * 60_000;

type Sdk = typeof import("@modelcontextprotocol/sdk/client/auth.js");
const sdkAuth = (): Sdk => require("@modelcontextprotocol/sdk/client/auth.js");
const sha256 = (v: string) => crypto.createHash("sha256").update(v).digest("hex");

export interface OAuthMethods {
	oauthProvider(row: ServerRow, interactive: boolean): McpOAuthProvider;
	oauthRequired(row: ServerRow): Promise<void>;
	oauthAuthorized(row: ServerRow): Promise<void>;
	oauthForget(row: ServerRow): Promise<void>;
}

type This = McpThis;

const secretRef = (row: ServerRow): SecretRef => ({
	organizationId: row.organization_id,
	environment: row.secret_environment,
	name: `mcp/oauth/${row.id}`
});

// Where the authorization server sends the browser back.
export function redirectUrl(configured: string | undefined): string {
	return configured ?? `http://localhost:${getConfig().port}/api/mcp/oauth/callback`;
}

export const OAuth: Partial<ServiceSchema> = {
	actions: {
		// Starts (or, with a usable refresh token, renews) the server's authorization: `{ authorized: false,
		// authorization_url }` for the browser to open, or `{ authorized: true }`.
		authorize: {
			permission: "mcp:manage",
			params: { id: "string" },
			response: McpAuthorize,
			async handler(this: This, ctx: Context<{ id: string }>) {
				const t = tenantSql(ctx);
				const row = (await this.state(t, ctx.params.id)).row;
				if (row.transport === "stdio") throw conflict("a stdio MCP server has no OAuth authorization", "id");
				const provider = this.oauthProvider(row, true);
				let result: string;
				try {
					result = await sdkAuth().auth(provider, {
						serverUrl: row.url!,
						fetchFn: egressFetch(this.hostPolicy)
					});
				} catch (err) {
					const why = redact((err as Error).message, await provider.knownValues());
					throw new ExternalFailure(
						`authorization with MCP server ${row.name} failed: ${why}`,
						502,
						"MCP_OAUTH"
					);
				}
				if (result === "AUTHORIZED") {
					await this.oauthAuthorized(row);
					return { authorized: true };
				}
				const pending = {
					state_hash: sha256(provider.stateValue!),
					expires_at: new Date(Date.now() + PENDING_MS).toISOString(),
					user_id: t.auth?.userId ?? null
				};
				await t.query(
					`UPDATE mcp_servers SET oauth = jsonb_set(COALESCE(oauth, '{}'), '{pending}', $2::jsonb)
					 WHERE id = $1 AND organization_id = $org`,
					[row.id, JSON.stringify(pending)]
				);
				return { authorized: false, authorization_url: provider.authorizationUrl!.href };
			}
		},

		// mcp-servers on removal: the stored tokens and client of the caller's organization's server go.
		forgetAuthorization: {
			permission: "mcp:manage",
			params: { id: "uuid", secret_environment: "string" },
			async handler(this: This, ctx: Context<{ id: string; secret_environment: string }>) {
				const t = tenantSql(ctx);
				const row = {
					id: ctx.params.id,
					organization_id: t.organizationId,
					secret_environment: ctx.params.secret_environment,
					name: ctx.params.id
				} as ServerRow;
				await this.oauthForget(row);
			}
		},

		// Where the authorization server sends the browser back. Public: the state (single use, bound to one server,
		// expiring) is the credential. Answers a redirect to the server's page.
		oauthCallback: {
			rest: "GET /oauth/callback",
			permission: PUBLIC,
			// An empty body: the answer is the redirect (302, Location).
			response: "string",
			params: {
				state: { type: "string", max: 200 },
				code: { type: "string", max: 4000, optional: true },
				error: { type: "string", max: 200, optional: true }
			},
			async handler(
				this: This,
				ctx: Context<{ state: string; code?: string; error?: string }, Record<string, unknown>>
			) {
				const back = (where: string, query: Record<string, string>) => {
					ctx.meta.$statusCode = 302;
					ctx.meta.$location = `${where}?${new URLSearchParams(query)}`;
					return "";
				};
				const db = await getDb();
				// Taken off the row whatever happens next: a state is used once.
				const taken = (
					await db.query<{ id: string; organization_id: string; pending: { expires_at: string } }>(
						`WITH p AS (SELECT id, oauth -> 'pending' AS pending FROM mcp_servers
							WHERE oauth -> 'pending' ->> 'state_hash' = $1 FOR UPDATE)
						 UPDATE mcp_servers m SET oauth = m.oauth - 'pending' FROM p WHERE m.id = p.id
						 RETURNING m.id, m.organization_id, p.pending`,
						[sha256(ctx.params.state)]
					)
				).rows[0];
				if (!taken)
					return back("/mcp-servers", { oauth_error: "this authorization is unknown or was already used" });
				const page = `/mcp-servers/${taken.id}`;
				if (new Date(taken.pending.expires_at) < new Date())
					return back(page, { oauth_error: "the authorization took too long: start it again" });
				if (ctx.params.error || !ctx.params.code)
					return back(page, {
						oauth_error: `the authorization was refused (${ctx.params.error ?? "no code"})`
					});
				this.states.delete(`${taken.organization_id}:${taken.id}`);
				const row = (await this.state(organizationSql(taken.organization_id), taken.id)).row;
				const provider = this.oauthProvider(row, true);
				try {
					await sdkAuth().auth(provider, {
						serverUrl: row.url!,
						authorizationCode: ctx.params.code,
						fetchFn: egressFetch(this.hostPolicy)
					});
				} catch (err) {
					const why = redact((err as Error).message, [ctx.params.code, ...(await provider.knownValues())]);
					this.logger.warn(`OAuth callback for MCP server ${row.id}: ${why}`);
					return back(page, { oauth_error: `the token exchange failed: ${why}` });
				}
				await this.oauthAuthorized(row);
				return back(page, { oauth: "authorized" });
			}
		}
	},

	methods: {
		oauthProvider(this: This, row: ServerRow, interactive: boolean): McpOAuthProvider {
			const ref = secretRef(row);
			const configured = row.oauth_client_id
				? {
						clientId: row.oauth_client_id,
						clientSecret: async () =>
							row.oauth_client_secret
								? this.resolveSecret({ ...ref, name: row.oauth_client_secret.secret })
								: undefined
					}
				: undefined;
			return new McpOAuthProvider({
				redirectUrl: redirectUrl(this.cfg.oauthRedirectUrl),
				interactive,
				// A pooled connection reads the vault only once the server is authorized (not on every request).
				stored: interactive || row.oauth_status === "authorized",
				configured,
				vault: {
					read: () =>
						this.resolveSecret(ref).catch((err: { code?: number }) => {
							// Nothing stored yet (no such secret, hence no grant): anything else is a real failure.
							if (err?.code === 403 || err?.code === 404) return undefined;
							throw err;
						}),
					write: async value => {
						await this.broker.call(
							"secrets.store",
							{ ...ref, value, description: `OAuth tokens of MCP server ${row.name}` },
							{ meta: this.identityMeta("secrets.store", ref.organizationId, resolveBinding(ref)) }
						);
						this.rememberSecret(ref, value);
					}
				},
				onRequired: () =>
					this.oauthRequired(row).catch(err =>
						this.logger.warn(`MCP server ${row.id}: ${(err as Error).message}`)
					)
			});
		},

		// The server wants an authorization nobody gave (or that no longer holds): the UI shows Authorize.
		async oauthRequired(this: This, row: ServerRow) {
			const t = organizationSql(row.organization_id);
			const changed = await t.rows(
				`UPDATE mcp_servers SET oauth_status = 'required' WHERE id = $1 AND organization_id = $org
				 AND oauth_status <> 'required' RETURNING id`,
				[row.id]
			);
			if (!changed.length) return;
			await this.markChanged(row, false);
		},

		async oauthAuthorized(this: This, row: ServerRow) {
			await organizationSql(row.organization_id).query(
				`UPDATE mcp_servers SET oauth_status = 'authorized', last_error = NULL WHERE id = $1 AND organization_id = $org`,
				[row.id]
			);
			await this.markChanged(row, true);
			await this.discover(row.organization_id, row.id).catch(err =>
				this.logger.info(`MCP server ${row.id} authorized but not discovered: ${(err as Error).message}`)
			);
		},

		// The server is gone or points elsewhere: its stored tokens go.
		async oauthForget(this: This, row: ServerRow) {
			await this.oauthProvider(row, true).invalidateCredentials("all");
		},

		async markChanged(this: This, row: ServerRow, reconnect: boolean) {
			this.states.delete(`${row.organization_id}:${row.id}`);
			this.specs.delete(`${row.organization_id}:${row.id}`);
			this.changed(row.organization_id, row.id, reconnect);
			await this.dropCaches(["mcp-servers"]);
			announceChange(this.broker, undefined, {
				organizationId: row.organization_id,
				entity: "mcp-servers",
				noun: "MCP server",
				id: row.id,
				action: "updated",
				label: row.name,
				permission: "mcp:read"
			});
		}
	}
};
