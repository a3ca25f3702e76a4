// mcp-servers: the MCP servers an organization registers. Credentials are never typed into a server: an env value
// or a header that carries one names a secret ({ secret: NAME }) in the server's secret environment, and saving the
// server grants the mcp service read access to exactly those secrets. Registering discovers the server at once;
// changing or removing it closes every replica's pooled connections (and stdio processes) for it.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { moduleSettings } from "../../lib/config";
import { tenantSql } from "../../lib/db/tenant";
import { HostPolicy } from "../../lib/egress";
import { fromDbError, invalid, notFound } from "../../lib/errors";
import { broadcast } from "../../lib/events/broadcast";
import { isCredentialHeader } from "../../lib/redact";
import { listOf } from "../../lib/response";
import { DbMixin, type DbService } from "../../mixins/db.mixin";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import { SECRET_ENVIRONMENT, SECRET_NAME } from "../../mixins/secrets-client.mixin";
import type { Queryable } from "../../lib/db";
import mcpModule from "./mcp.module";
import { McpAuthorize, McpCapabilities, McpCheck, McpDiscovery, McpHealthCheck } from "./mcp.responses";
import type { Valued } from "./state";
import "./mcp.events";

const COLUMNS = [
	"id",
	"organization_id",
	"name",
	"description",
	"transport",
	"command",
	"args",
	"env",
	"cwd",
	"url",
	"headers",
	"secret_environment",
	"enabled",
	"timeout_ms",
	"tool_calls_per_minute",
	"health",
	"health_changed_at",
	"consecutive_failures",
	"consecutive_successes",
	"last_error",
	"server_info",
	"protocol_version",
	"discovered_at",
	"next_health_at",
	"next_refresh_at",
	"oauth",
	"oauth_status",
	"oauth_client_id",
	"oauth_client_secret",
	"created_by",
	"created_at",
	"updated_at"
];
const FIELDS = COLUMNS.filter(c => !["next_health_at", "next_refresh_at", "oauth", "protocol_version"].includes(c));

const valued = (key: object) => ({
	type: "record",
	key,
	value: [
		{ type: "string", max: 4000 },
		{ type: "object", strict: true, props: { secret: { type: "string", pattern: SECRET_NAME } } }
	],
	optional: true
});
const ENV_KEY = { type: "string", pattern: /^[A-Za-z_][A-Za-z0-9_]{0,127}$/ };
const HEADER_KEY = { type: "string", pattern: /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/ };
const optionalCount = { type: "number", integer: true, min: 0, optional: true, nullable: true, convert: true };

type Params = {
	id?: string;
	name?: string;
	transport?: "stdio" | "http" | "sse";
	command?: string | null;
	args?: string[];
	env?: Record<string, Valued>;
	cwd?: string | null;
	url?: string | null;
	headers?: Record<string, Valued>;
	secret_environment?: string;
	enabled?: boolean;
	oauth_client_id?: string | null;
	oauth_client_secret?: { secret: string } | null;
};

interface ServersThis extends DbService {
	hostPolicy: HostPolicy;
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
	checkServer(ctx: Context<Params>, current?: Record<string, any>): Promise<Record<string, unknown>>;
	allowSecret(ctx: Context, name: string, environment: string, field: string): Promise<void>;
	changed(organizationId: string, serverId: string, reconnect: boolean): void;
	discoverQuietly(ctx: Context, id: string): Promise<void>;
}

const McpServersService: ServiceSchema = {
	name: "mcp-servers",
	mixins: [
		DbMixin({
			table: "mcp_servers",
			columns: COLUMNS,
			fields: FIELDS,
			writable: {
				name: { type: "string", pattern: /^[a-z0-9][a-z0-9_-]{0,62}$/, label: "Name" },
				description: { type: "string", max: 2000, optional: true },
				transport: { type: "enum", values: ["stdio", "http", "sse"], label: "Transport" },
				command: { type: "string", min: 1, max: 1000, optional: true, nullable: true, label: "Command" },
				args: { type: "array", items: { type: "string", max: 4000 }, max: 100, optional: true },
				env: valued(ENV_KEY),
				cwd: { type: "string", max: 1000, optional: true, nullable: true },
				url: { type: "url", optional: true, nullable: true, label: "URL" },
				headers: valued(HEADER_KEY),
				secret_environment: { type: "string", pattern: SECRET_ENVIRONMENT, optional: true },
				enabled: { type: "boolean", optional: true },
				timeout_ms: { ...optionalCount, min: 100, max: 3_600_000, label: "Timeout (ms)" },
				tool_calls_per_minute: { ...optionalCount, label: "Calls per minute, per tool" },
				oauth_client_id: { type: "string", min: 1, max: 500, optional: true, nullable: true },
				oauth_client_secret: {
					type: "object",
					strict: true,
					props: { secret: { type: "string", pattern: SECRET_NAME } },
					optional: true,
					nullable: true
				}
			},
			tenant: true,
			searchFields: ["name", "description"],
			permissions: { read: "mcp:read", write: "mcp:manage" },
			rest: "/mcp/servers",
			entityName: "MCP server",
			schemaName: "McpServer",
			entity: {
				args: listOf("string"),
				env: "object",
				headers: "object",
				health: { type: "enum", values: ["unknown", "healthy", "unhealthy"] },
				health_changed_at: "date|nullable",
				consecutive_failures: "number|integer",
				consecutive_successes: "number|integer",
				last_error: "string|nullable",
				server_info: "object|nullable",
				discovered_at: "date|nullable",
				oauth_status: { type: "enum", values: ["none", "required", "authorized"] },
				oauth_client_id: "string|nullable",
				oauth_client_secret: "object|nullable",
				created_by: "uuid|nullable"
			},
			live: true
		}),
		EventsMixin
	],

	actions: {
		count: false,
		find: false,

		create: {
			async handler(this: ServersThis, ctx: Context<Params>) {
				const t = tenantSql(ctx);
				const values = await this.checkServer(ctx);
				const row = await this.withEvents(async (tx, publish) => {
					const inserted = await this.adapter.withTx(tx).insert({
						...values,
						organization_id: t.organizationId,
						created_by: t.auth?.userId ?? null
					});
					publish("mcp.server.registered", {
						organizationId: t.organizationId,
						serverId: inserted.id as string,
						serverName: inserted.name as string,
						transport: inserted.transport as string
					});
					return inserted;
				}).catch((err: unknown) => {
					throw fromDbError(err, "MCP server", "name");
				});
				await this.clearCache();
				await this.discoverQuietly(ctx, row.id as string);
				const json = await this.transformDocuments(ctx, {}, await this.findScoped(ctx, row.id as string));
				await this.entityChanged("created", json, ctx, row);
				return json;
			}
		},

		update: {
			async handler(this: ServersThis, ctx: Context<Params>) {
				const current = await this.findScoped(ctx, ctx.params.id!);
				const values = await this.checkServer(ctx, current);
				const rows = await this.adapter
					.updateMany(this.scope(ctx, { id: current.id }), { $set: { ...values, updated_at: new Date() } })
					.catch((err: unknown) => {
						throw fromDbError(err, "MCP server", "name");
					});
				if (!rows.length) throw notFound("MCP server");
				this.changed(current.organization_id as string, current.id as string, true);
				await this.clearCache();
				if (rows[0].enabled) await this.discoverQuietly(ctx, current.id as string);
				const json = await this.transformDocuments(ctx, {}, await this.findScoped(ctx, current.id as string));
				await this.entityChanged("updated", json, ctx, rows[0]);
				return json;
			}
		},

		remove: {
			async handler(this: ServersThis, ctx: Context<{ id: string }>) {
				const current = await this.findScoped(ctx, ctx.params.id);
				await this.withEvents(async (tx, publish) => {
					await tx.query("DELETE FROM mcp_servers WHERE id = $1 AND organization_id = $2", [
						current.id,
						current.organization_id
					]);
					publish("mcp.server.deregistered", {
						organizationId: current.organization_id as string,
						serverId: current.id as string,
						serverName: current.name as string
					});
				});
				this.changed(current.organization_id as string, current.id as string, true);
				await this.clearCache();
				// Its stored OAuth tokens go with it.
				if (current.oauth_status !== "none")
					await ctx
						.call("mcp.forgetAuthorization", {
							id: current.id,
							secret_environment: current.secret_environment
						})
						.catch((err: Error) => this.logger.warn(`OAuth tokens of ${current.id} kept: ${err.message}`));
				const json = await this.transformDocuments(ctx, {}, current);
				await this.entityChanged("removed", json, ctx, current);
				return json;
			}
		},

		// Discovers tools, resources and prompts again now.
		refresh: {
			rest: "POST /:id/refresh",
			permission: "mcp:manage",
			params: { id: "string" },
			response: McpDiscovery,
			handler(ctx: Context<{ id: string }>) {
				return ctx.call("mcp.discover", { id: ctx.params.id });
			}
		},

		// Starts the server's OAuth authorization: the URL the browser opens (or `authorized: true` at once).
		authorize: {
			rest: "POST /:id/authorize",
			permission: "mcp:manage",
			params: { id: "string" },
			response: McpAuthorize,
			handler(ctx: Context<{ id: string }>) {
				return ctx.call("mcp.authorize", { id: ctx.params.id });
			}
		},

		// Pings the server now (recorded like a scheduled check).
		check: {
			rest: "POST /:id/check",
			permission: "mcp:manage",
			params: { id: "string" },
			response: McpCheck,
			handler(ctx: Context<{ id: string }>) {
				return ctx.call("mcp.check", { id: ctx.params.id });
			}
		},

		// The health timeline: the latest checks, newest first.
		health: {
			rest: "GET /:id/health",
			permission: "mcp:read",
			params: {
				id: "string",
				limit: { type: "number", integer: true, min: 1, max: 1000, optional: true, convert: true }
			},
			response: listOf(McpHealthCheck),
			async handler(ctx: Context<{ id: string; limit?: number }>) {
				const t = tenantSql(ctx);
				await t.byId(
					"MCP server",
					"SELECT id FROM mcp_servers WHERE id = $1 AND organization_id = $org",
					ctx.params.id
				);
				return t.rows(
					`SELECT id, ok, latency_ms, error, health, checked_at FROM mcp_health_checks
					 WHERE server_id = $1 AND organization_id = $org ORDER BY checked_at DESC, id DESC LIMIT $2`,
					[ctx.params.id, ctx.params.limit ?? 100]
				);
			}
		},

		// What the last discovery found besides tools: capabilities, instructions, resources, templates, prompts.
		capabilities: {
			rest: "GET /:id/capabilities",
			permission: "mcp:read",
			params: { id: "string" },
			response: McpCapabilities,
			async handler(ctx: Context<{ id: string }>) {
				const t = tenantSql(ctx);
				await t.byId(
					"MCP server",
					"SELECT id FROM mcp_servers WHERE id = $1 AND organization_id = $org",
					ctx.params.id
				);
				const row = await t.one(
					`SELECT server_id, capabilities, instructions, resources, resource_templates, prompts, discovered_at
					 FROM mcp_server_capabilities WHERE server_id = $1 AND organization_id = $org`,
					[ctx.params.id]
				);
				if (!row) throw notFound("discovery of this MCP server (refresh it)");
				return row;
			}
		}
	},

	methods: {
		// The row as it will be, checked as a whole: transport fields, the operator's stdio switch, the host policy,
		// credentials only from secrets (granted to the mcp service). Returns the values to write.
		async checkServer(this: ServersThis, ctx: Context<Params>, current?: Record<string, any>) {
			const { id: _id, ...changes } = ctx.params;
			const next = { ...(current ?? {}), ...changes } as Record<string, any>;
			const out: Record<string, unknown> = { ...changes };
			if (next.transport === "stdio") {
				if (!moduleSettings(mcpModule).stdioEnabled)
					throw invalid("transport", "stdio MCP servers are turned off on this platform (MCP_STDIO_ENABLED)");
				if (!next.command) throw invalid("command", "is required for a stdio server");
				if (next.url || Object.keys(next.headers ?? {}).length)
					throw invalid("url", "a stdio server has no URL or headers");
				if (next.oauth_client_id || next.oauth_client_secret)
					throw invalid("oauth_client_id", "a stdio server has no OAuth client");
				out.url = null;
			} else {
				if (!next.url) throw invalid("url", "is required for an HTTP server");
				const url = new URL(next.url);
				if (url.protocol !== "http:" && url.protocol !== "https:")
					throw invalid("url", "must start with http:// or https://");
				if (url.username || url.password)
					throw invalid("url", "must not carry credentials: use a header from a secret");
				const refused = await this.hostPolicy.checkUrl(url).catch(() => undefined);
				if (refused) throw invalid("url", refused.message);
				if (next.command || (next.args ?? []).length || Object.keys(next.env ?? {}).length)
					throw invalid("command", "an HTTP server has no command, arguments or environment");
				out.command = null;
				// Tokens were issued for the old address: the new one is authorized again if it asks.
				if (current && changes.url !== undefined && changes.url !== current.url) out.oauth_status = "none";
			}
			if (next.oauth_client_secret && !next.oauth_client_id)
				throw invalid("oauth_client_secret", "is the secret of a client: give oauth_client_id too");
			for (const [field, values, isCredential] of [
				["headers", next.headers, isCredentialHeader],
				["env", next.env, (k: string) => isCredentialHeader(k) || /KEY|PASS/i.test(k)]
			] as const)
				for (const [k, v] of Object.entries<Valued>(values ?? {}))
					if (typeof v === "string" && isCredential(k))
						throw invalid(
							field,
							`"${k}" carries a credential: choose a secret for it instead of typing the value`
						);
			const environment = next.secret_environment ?? "production";
			const touched =
				changes.env !== undefined || changes.headers !== undefined || changes.secret_environment !== undefined;
			if (touched)
				for (const [field, values] of [
					["env", next.env],
					["headers", next.headers]
				] as const)
					for (const v of Object.values<Valued>(values ?? {}))
						if (typeof v !== "string") await this.allowSecret(ctx, v.secret, environment, field);
			if (next.oauth_client_secret && (touched || changes.oauth_client_secret !== undefined))
				await this.allowSecret(ctx, next.oauth_client_secret.secret, environment, "oauth_client_secret");
			for (const k of ["args", "env", "headers", "oauth_client_secret"])
				if (out[k] !== undefined && out[k] !== null) out[k] = JSON.stringify(out[k]);
			return out;
		},

		// The secret must exist in `environment` (shared, not a project's); the mcp service gets read access to it.
		async allowSecret(this: ServersThis, ctx: Context, name: string, environment: string, field: string) {
			const found: any[] = await ctx.call("secrets.list", { environment, search: name });
			const secret = found.find(s => s.name === name && !s.project_id);
			if (!secret) throw invalid(field, `no secret named ${name} in ${environment}`);
			const grants: any[] = await ctx.call("secrets.grants", { secretId: secret.id });
			if (!grants.some(g => g.grantee_type === "service" && g.grantee_id === "mcp" && !g.expires_at))
				await ctx.call("secrets.grant", {
					secretId: secret.id,
					permission: "read",
					granteeType: "service",
					granteeId: "mcp"
				});
		},

		changed(this: ServersThis, organizationId: string, serverId: string, reconnect: boolean) {
			void Promise.resolve(
				broadcast(this.broker, "mcp.server.changed", { organizationId, serverId, reconnect })
			).catch(err => this.logger.warn(`mcp.server.changed not sent: ${(err as Error).message}`));
		},

		// A server that cannot be reached yet stays registered, with the reason as its last error.
		async discoverQuietly(this: ServersThis, ctx: Context, id: string) {
			await ctx.call("mcp.discover", { id }).catch(async (err: Error) => {
				this.logger.info(`MCP server ${id} registered but not discovered: ${err.message}`);
				await this.adapter.updateMany(this.scope(ctx, { id }), {
					$set: { last_error: err.message.slice(0, 2000) }
				});
			});
		}
	},

	created(this: Service) {
		const hosts = moduleSettings(mcpModule).allowedPrivateHosts;
		(this as ServersThis).hostPolicy = new HostPolicy(hosts, { variable: "MCP_ALLOWED_PRIVATE_HOSTS" });
	}
};

export default McpServersService;
