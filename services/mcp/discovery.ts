// Discovery: what a server offers (capabilities, instructions, tools, resources, resource templates, prompts), read
// from it and stored; a tool whose schemas changed since last time is drift (marked and published).
import type { Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { organizationSql } from "../../lib/db/tenant";
import { ExternalFailure } from "../../lib/errors";
import { announceChange } from "../../lib/live";
import { redact } from "../../lib/redact";
import { schemaHash } from "./schemas";
import type { McpThis } from "./mcp.types";

export const Discovery: Partial<ServiceSchema> = {
	methods: {
		// One discovery per server at a time on this replica; a second request waits for the running one.
		async discover(this: McpThis, organizationId: string, serverId: string) {
			const key = `${organizationId}:${serverId}`;
			const running = this.discovering.get(key);
			if (running) return running;
			const run = (async () => {
				const t = organizationSql(organizationId);
				this.states.delete(key);
				const state = await this.state(t, serverId);
				const spec = await this.specFor(state);
				const entry = await this.pool.acquire(spec).catch(err => {
					throw new ExternalFailure(
						redact(
							`could not connect to MCP server ${state.row.name}: ${(err as Error).message}`,
							spec.secrets
						),
						502,
						"MCP_UNAVAILABLE"
					);
				});
				const c = entry.client;
				const caps = c.getServerCapabilities() ?? {};
				const all = async <T>(
					list: (cursor?: string) => Promise<{ nextCursor?: string } & T>,
					pick: (r: T) => unknown[]
				) => {
					const out: unknown[] = [];
					let cursor: string | undefined;
					do {
						const page = await list(cursor);
						out.push(...pick(page));
						cursor = page.nextCursor;
					} while (cursor && out.length < 10_000);
					return out;
				};
				const opts = { timeout: this.cfg.callTimeoutMs };
				const tools = caps.tools
					? ((await all(
							cursor => c.listTools(cursor ? { cursor } : undefined, opts),
							(r: { tools: unknown[] }) => r.tools
						)) as {
							name: string;
							title?: string;
							description?: string;
							inputSchema: object;
							outputSchema?: object;
							annotations?: object;
						}[])
					: [];
				const resources = caps.resources
					? await all(
							cursor => c.listResources(cursor ? { cursor } : undefined, opts),
							(r: { resources: unknown[] }) => r.resources
						)
					: [];
				const templates = caps.resources
					? await all(
							cursor => c.listResourceTemplates(cursor ? { cursor } : undefined, opts),
							(r: { resourceTemplates: unknown[] }) => r.resourceTemplates
						).catch(() => [])
					: [];
				const prompts = caps.prompts
					? await all(
							cursor => c.listPrompts(cursor ? { cursor } : undefined, opts),
							(r: { prompts: unknown[] }) => r.prompts
						)
					: [];
				const row = state.row;
				const drift: { tool: string; change: "input" | "output" | "removed" }[] = [];
				await this.withEvents(async (tx, publish) => {
					await tx.query(
						`INSERT INTO mcp_server_capabilities (server_id, organization_id, capabilities, instructions, resources,
							resource_templates, prompts, discovered_at)
						 VALUES ($1, $2, $3, $4, $5, $6, $7, now())
						 ON CONFLICT (server_id) DO UPDATE SET capabilities = $3, instructions = $4, resources = $5,
							resource_templates = $6, prompts = $7, discovered_at = now()`,
						[
							row.id,
							organizationId,
							JSON.stringify(caps),
							c.getInstructions() ?? null,
							JSON.stringify(resources),
							JSON.stringify(templates),
							JSON.stringify(prompts)
						]
					);
					const known = new Map(
						(
							await tx.query<{
								id: string;
								name: string;
								schema_hash: string;
								input_schema: object;
								output_schema: object | null;
								removed: boolean;
							}>(
								"SELECT id, name, schema_hash, input_schema, output_schema, removed FROM mcp_tools WHERE server_id = $1 FOR UPDATE",
								[row.id]
							)
						).rows.map(r => [r.name, r])
					);
					for (const tool of tools) {
						const hash = schemaHash(tool.inputSchema, tool.outputSchema);
						const before = known.get(tool.name);
						known.delete(tool.name);
						const values = [
							tool.title ?? null,
							tool.description ?? null,
							JSON.stringify(tool.inputSchema),
							tool.outputSchema ? JSON.stringify(tool.outputSchema) : null,
							tool.annotations ? JSON.stringify(tool.annotations) : null,
							hash
						];
						if (!before) {
							await tx.query(
								`INSERT INTO mcp_tools (organization_id, server_id, name, title, description, input_schema, output_schema,
									annotations, schema_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
								[organizationId, row.id, tool.name, ...values]
							);
							continue;
						}
						const drifted = before.schema_hash !== hash;
						await tx.query(
							`UPDATE mcp_tools SET title = $2, description = $3, input_schema = $4, output_schema = $5,
								annotations = $6, schema_hash = $7, removed = false, updated_at = now()
								${drifted ? ", changed = true, changed_at = now(), previous_input_schema = $8, previous_output_schema = $9" : ""}
							 WHERE id = $1`,
							[
								before.id,
								...values,
								...(drifted
									? [
											JSON.stringify(before.input_schema),
											before.output_schema ? JSON.stringify(before.output_schema) : null
										]
									: [])
							]
						);
						if (drifted) {
							const inputChanged =
								schemaHash(tool.inputSchema, null) !== schemaHash(before.input_schema, null);
							drift.push({ tool: tool.name, change: inputChanged ? "input" : "output" });
							publish("mcp.tool.schema.changed", {
								organizationId,
								serverId: row.id,
								serverName: row.name,
								tool: tool.name,
								toolId: before.id,
								change: inputChanged ? "input" : "output"
							});
						}
					}
					for (const gone of known.values()) {
						if (gone.removed) continue;
						await tx.query(
							"UPDATE mcp_tools SET removed = true, changed = true, changed_at = now(), updated_at = now() WHERE id = $1",
							[gone.id]
						);
						drift.push({ tool: gone.name, change: "removed" });
						publish("mcp.tool.schema.changed", {
							organizationId,
							serverId: row.id,
							serverName: row.name,
							tool: gone.name,
							toolId: gone.id,
							change: "removed"
						});
					}
					const info = c.getServerVersion();
					await tx.query(
						`UPDATE mcp_servers SET server_info = $2, discovered_at = now(), last_error = NULL,
							next_refresh_at = now() + $3 * interval '1 millisecond' WHERE id = $1`,
						[row.id, info ? JSON.stringify(info) : null, this.cfg.refreshIntervalMs || 86_400_000]
					);
				});
				this.changed(organizationId, row.id, false);
				await this.dropCaches(["mcp-tools", "mcp-servers"]);
				announceChange(this.broker, undefined, {
					organizationId,
					entity: "mcp-tools",
					noun: "tool list",
					id: row.id,
					action: "updated",
					label: row.name,
					permission: "mcp:read"
				});
				return {
					tools: tools.length,
					resources: resources.length,
					resource_templates: templates.length,
					prompts: prompts.length,
					drift
				};
			})();
			this.discovering.set(key, run);
			try {
				return await run;
			} finally {
				this.discovering.delete(key);
			}
		}
	},

	created(this: Service) {
		(this as McpThis).discovering = new Map();
	}
};
