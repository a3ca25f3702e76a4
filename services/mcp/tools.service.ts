// mcp-tools: the tools discovery found on the organization's servers, with their schemas and drift marks; what an
// admin sets on them (needs approval, a per-tool rate limit, acknowledging drift); the allow-lists; and
// `available`, the tools a caller may use (the agent's tool list).
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { authOf } from "../../lib/authz";
import { isUuid, tenantSql } from "../../lib/db/tenant";
import { invalid, notFound } from "../../lib/errors";
import { broadcast } from "../../lib/events/broadcast";
import { listOf } from "../../lib/response";
import { DbMixin, type DbService } from "../../mixins/db.mixin";
import { McpAllowList, McpAvailableTool } from "./mcp.responses";
import { allowedFor, loadState } from "./state";
import "./mcp.events";

const COLUMNS = [
	"id",
	"organization_id",
	"server_id",
	"name",
	"title",
	"description",
	"input_schema",
	"output_schema",
	"annotations",
	"schema_hash",
	"previous_input_schema",
	"previous_output_schema",
	"changed",
	"changed_at",
	"removed",
	"requires_approval",
	"calls_per_minute",
	"created_at",
	"updated_at"
];

interface ToolsThis extends DbService {
	changed(organizationId: string, serverId: string): void;
}

const McpToolsService: ServiceSchema = {
	name: "mcp-tools",
	mixins: [
		DbMixin({
			table: "mcp_tools",
			columns: COLUMNS,
			writable: {
				requires_approval: { type: "boolean", optional: true, label: "Needs approval" },
				calls_per_minute: {
					type: "number",
					integer: true,
					min: 0,
					optional: true,
					nullable: true,
					convert: true,
					label: "Calls per minute"
				},
				// Only `false`: an admin has seen the schema change.
				changed: { type: "equal", value: false, strict: true, optional: true, label: "Changed" }
			},
			tenant: true,
			searchFields: ["name", "title", "description"],
			permissions: { read: "mcp:read", write: "mcp:manage" },
			rest: "/mcp/tools",
			entityName: "MCP tool",
			schemaName: "McpTool",
			entity: {
				server_id: "uuid",
				name: "string",
				title: "string|nullable",
				description: "string|nullable",
				input_schema: "object",
				output_schema: "object|nullable",
				annotations: "object|nullable",
				schema_hash: "string",
				previous_input_schema: "object|nullable",
				previous_output_schema: "object|nullable",
				changed_at: "date|nullable",
				removed: "boolean"
			}
		})
	],

	actions: {
		count: false,
		find: false,
		create: false,
		remove: false,

		update: {
			async handler(this: ToolsThis, ctx: Context<{ id: string; [k: string]: unknown }>) {
				const { id, ...changes } = ctx.params;
				const rows = await this.adapter.updateMany(this.scope(ctx, { id }), {
					$set: { ...changes, updated_at: new Date() }
				});
				if (!rows.length) throw notFound("MCP tool");
				this.changed(rows[0].organization_id as string, rows[0].server_id as string);
				await this.clearCache();
				const json = await this.transformDocuments(ctx, {}, rows[0]);
				await this.entityChanged("updated", json, ctx, rows[0]);
				return json;
			}
		},

		// The tools the caller may use, on the servers named (by id or name) or on all enabled servers, with the
		// organization's and the caller's teams' allow-lists applied. Removed tools are never offered.
		available: {
			rest: "GET /available",
			permission: "mcp:read",
			params: {
				servers: { type: "array", items: { type: "string", min: 1, max: 200 }, optional: true, max: 100 }
			},
			response: named(),
			async handler(ctx: Context<{ servers?: string[] }>) {
				const t = tenantSql(ctx);
				const auth = authOf(ctx)!;
				const ids = ctx.params.servers
					? ctx.params.servers
					: (
							await t.rows<{ id: string }>(
								"SELECT id FROM mcp_servers WHERE organization_id = $org AND enabled ORDER BY name"
							)
						).map(r => r.id);
				const teams = auth.userId
					? (
							await t.rows<{ team_id: string }>(
								"SELECT team_id FROM team_members WHERE user_id = $1 AND organization_id = $org",
								[auth.userId]
							)
						).map(r => r.team_id)
					: [];
				const tools: unknown[] = [];
				for (const server of ids) {
					const state = await loadState(t, server);
					if (!state) throw notFound(`MCP server ${server}`, "servers");
					if (!state.row.enabled) continue;
					for (const tool of state.tools.values()) {
						if (tool.removed || !allowedFor(state, tool.name, teams)) continue;
						tools.push({
							server_id: state.row.id,
							server_name: state.row.name,
							name: tool.name,
							...(tool.title ? { title: tool.title } : {}),
							...(tool.description ? { description: tool.description } : {}),
							input_schema: tool.input_schema,
							...(tool.output_schema ? { output_schema: tool.output_schema } : {}),
							...(tool.annotations ? { annotations: tool.annotations } : {}),
							requires_approval: tool.requires_approval
						});
					}
				}
				return { tools };
			}
		},

		allowLists: {
			rest: "GET /allow-lists",
			permission: "mcp:read",
			params: { server_id: { type: "string", optional: true } },
			response: listOf(McpAllowList),
			async handler(ctx: Context<{ server_id?: string }>) {
				const t = tenantSql(ctx);
				if (ctx.params.server_id !== undefined && !isUuid(ctx.params.server_id)) return [];
				return t.rows(
					`SELECT id, server_id, team_id, tools, updated_at FROM mcp_allow_lists
					 WHERE organization_id = $org ${ctx.params.server_id ? "AND server_id = $1" : ""} ORDER BY server_id, team_id NULLS FIRST`,
					ctx.params.server_id ? [ctx.params.server_id] : []
				);
			}
		},

		// Sets (tools: [...]) or clears (tools: null) the allow-list of a server for the organization or one team.
		setAllowList: {
			rest: "PUT /allow-lists",
			permission: "mcp:manage",
			params: {
				$$strict: true,
				server_id: { type: "string", label: "Server" },
				team_id: { type: "string", optional: true, nullable: true, label: "Team" },
				tools: {
					type: "array",
					items: { type: "string", min: 1, max: 200 },
					max: 1000,
					nullable: true,
					label: "Tools"
				}
			},
			// null when the list was removed
			response: { type: "object", props: { allow_list: [McpAllowList, "null"] } },
			async handler(
				this: ToolsThis,
				ctx: Context<{ server_id: string; team_id?: string | null; tools: string[] | null }>
			) {
				const t = tenantSql(ctx);
				const p = ctx.params;
				await t.byId(
					"MCP server",
					"SELECT id FROM mcp_servers WHERE id = $1 AND organization_id = $org",
					p.server_id
				);
				if (p.team_id) {
					if (!isUuid(p.team_id)) throw notFound("team", "team_id");
					const team = await t.one("SELECT id FROM teams WHERE id = $1 AND organization_id = $org", [
						p.team_id
					]);
					if (!team) throw notFound("team", "team_id");
				}
				let row: unknown = null;
				if (p.tools === null)
					await t.query(
						"DELETE FROM mcp_allow_lists WHERE server_id = $1 AND team_id IS NOT DISTINCT FROM $2 AND organization_id = $org",
						[p.server_id, p.team_id ?? null]
					);
				else {
					if (p.tools === undefined)
						throw invalid("tools", "is required (a list, or null to remove the list)");
					row = await t.one(
						`INSERT INTO mcp_allow_lists (organization_id, server_id, team_id, tools) VALUES ($org, $1, $2, $3)
						 ON CONFLICT (server_id, team_id) DO UPDATE SET tools = $3, updated_at = now()
						 RETURNING id, server_id, team_id, tools, updated_at`,
						[p.server_id, p.team_id ?? null, [...new Set(p.tools)]]
					);
				}
				this.changed(t.organizationId, p.server_id);
				return { allow_list: row };
			}
		}
	},

	methods: {
		changed(this: ToolsThis, organizationId: string, serverId: string) {
			void Promise.resolve(
				broadcast(this.broker, "mcp.server.changed", { organizationId, serverId, reconnect: false })
			).catch(err => this.logger.warn(`mcp.server.changed not sent: ${(err as Error).message}`));
		}
	}
};

function named() {
	return { type: "object", props: { tools: listOf(McpAvailableTool) } };
}

export default McpToolsService;
