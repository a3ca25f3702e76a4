// mcp: the runtime. Tool calls (`mcp.call`, also POST /api/mcp/call for the UI's "try it") on pooled clients
// (pool.ts), discovery of a server's tools, resources and prompts (`mcp.discover`), health checks
// (`mcp.check`), and the schedule that runs both for every enabled server on one replica at a time.
import crypto from "crypto";
import type { Context, Service } from "moleculer";
import { Errors } from "moleculer";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { ServiceSchema } from "../../lib/schema";
import { authOf } from "../../lib/authz";
import { moduleSettings } from "../../lib/config";
import { getDb, type Queryable } from "../../lib/db";
import { organizationSql, tenantSql, type TenantSql } from "../../lib/db/tenant";
import { HostPolicy } from "../../lib/egress";
import { conflict, ExternalFailure, forbidden, notFound } from "../../lib/errors";
import { broadcast } from "../../lib/events/broadcast";
import { announceChange } from "../../lib/live";
import { redact } from "../../lib/redact";
import type { AuthInfo } from "../../lib/permissions";
import { CancellableMixin } from "../../mixins/cancellable.mixin";
import { dropCachedAnswers } from "../../mixins/db.mixin";
import { HousekeepingMixin } from "../../mixins/housekeeping.mixin";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import { RateLimitMixin, type Limit, type RateLimitMethods } from "../../mixins/rate-limit.mixin";
import { SecretsClientMixin, type SecretRef } from "../../mixins/secrets-client.mixin";
import type { InFlight } from "../../lib/in-flight";
import mcpModule from "./mcp.module";
import { ClientPool, type ServerSpec } from "./pool";
import { check, schemaHash, validateArguments } from "./schemas";
import { allowedFor, loadState, specOf, type ServerState } from "./state";
import { McpCall, McpCheck, McpDiscovery } from "./mcp.responses";
import type { Health } from "./mcp.events";
import "./mcp.events";

type Settings = ReturnType<typeof moduleSettings<typeof mcpModule>>;

// How much of an argument or result the log keeps.
const LOG_KEEP_BYTES = 64 * 1024;
const TICK_MS = 1000;
// The SDK's ErrorCode.RequestTimeout (its McpError), by value: the SDK is loaded only with the first client.
const REQUEST_TIMEOUT = -32001;
const CLAIM_BATCH = 20;

export interface CallParams {
	server: string;
	tool: string;
	arguments?: Record<string, unknown>;
	timeout_ms?: number;
	approved?: boolean;
}

export interface CallAnswer {
	execution_id: string;
	is_error: boolean;
	content: unknown[];
	structured_content?: unknown;
	duration_ms: number;
}

type Outcome = "completed" | "error" | "timeout" | "cancelled" | "failed" | "too_large";

interface ExecutionRecord {
	id: string;
	organizationId: string;
	server: ServerState["row"];
	tool: string;
	auth: AuthInfo;
	args: unknown;
	result?: unknown;
	isError: boolean;
	outcome: Outcome;
	error?: string;
	durationMs: number;
	startedAt: Date;
	secrets: string[];
}

export interface McpThis extends Service, RateLimitMethods {
	settings: Record<string, unknown>;
	cfg: Settings;
	pool: ClientPool;
	hostPolicy: HostPolicy;
	inFlight: InFlight;
	states: Map<string, Promise<ServerState | undefined>>;
	specs: Map<string, Promise<ServerSpec>>;
	writes: Set<Promise<unknown>>;
	discovering: Map<string, Promise<unknown>>;
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
	resolveSecret(ref: SecretRef): Promise<string>;
	state(t: TenantSql, server: string): Promise<ServerState>;
	specFor(state: ServerState): Promise<ServerSpec>;
	teamsOf(t: TenantSql, auth: AuthInfo, state: ServerState): Promise<string[]>;
	record(rec: ExecutionRecord): void;
	flush(): Promise<void>;
	discover(organizationId: string, serverId: string): Promise<unknown>;
	checkHealth(organizationId: string, serverId: string): Promise<{ ok: boolean; latencyMs: number; health: Health }>;
	recordHealth(
		organizationId: string,
		serverId: string,
		ok: boolean,
		latencyMs: number | null,
		error?: string
	): Promise<Health>;
	tick(): Promise<void>;
	changed(organizationId: string, serverId: string, reconnect: boolean): void;
	dropCaches(services: string[]): Promise<void>;
}

// A stored copy of a JSON value with the server's secret values removed, cut to LOG_KEEP_BYTES.
function logged(value: unknown, secrets: string[]): unknown {
	if (value === undefined) return null;
	const text = redact(JSON.stringify(value), secrets);
	if (text.length <= LOG_KEEP_BYTES) return JSON.parse(text);
	return { truncated: true, bytes: text.length, preview: text.slice(0, LOG_KEEP_BYTES) };
}

const cancelled = (why: string) => new Errors.MoleculerError(why, 499, "CANCELLED");

const McpService: ServiceSchema = {
	name: "mcp",
	mixins: [
		EventsMixin,
		SecretsClientMixin,
		RateLimitMixin("mcp"),
		CancellableMixin("mcp.cancel", why => cancelled(`tool call ${why}`)),
		// Health checks and refreshes fall due per server; each tick claims the due ones (one replica each).
		HousekeepingMixin(
			"tick",
			service => {
				const { healthIntervalMs, refreshIntervalMs } = (service as McpThis).cfg;
				const every = [healthIntervalMs, refreshIntervalMs].filter(Boolean);
				return every.length ? Math.min(TICK_MS, ...every) : 0;
			},
			"run the MCP schedule"
		)
	],
	settings: { rest: "/mcp" },

	actions: {
		// One tool call. Organization from the caller; allow-lists, approval, argument schema and rate limits are
		// checked before anything is sent. Cancelling the caller (broadcast `mcp.cancel` with the call's requestID)
		// sends notifications/cancelled to the server; so does the timeout. Progress the server reports is relayed
		// as the broadcast `mcp.progress` ({ executionId, requestId, progress, total, message }) and as a live
		// notice on the execution (the UI's progress bar).
		call: {
			rest: "POST /call",
			permission: "mcp:write",
			timeout: 0,
			params: {
				$$strict: true,
				server: { type: "string", min: 1, max: 200 },
				tool: { type: "string", min: 1, max: 200 },
				arguments: { type: "object", optional: true },
				timeout_ms: { type: "number", integer: true, min: 1, max: 3_600_000, optional: true, convert: true },
				approved: { type: "boolean", optional: true }
			},
			response: McpCall,
			async handler(this: McpThis, ctx: Context<CallParams>): Promise<CallAnswer> {
				const p = ctx.params;
				const auth = authOf(ctx)!;
				const t = tenantSql(ctx);
				const state = await this.state(t, p.server);
				const row = state.row;
				if (!row.enabled) throw conflict(`MCP server ${row.name} is disabled`, "server");
				if (row.transport === "stdio" && !this.cfg.stdioEnabled)
					throw forbidden("stdio MCP servers are turned off on this platform (MCP_STDIO_ENABLED)");
				const tool = state.tools.get(p.tool);
				if (!tool || tool.removed) throw notFound(`tool ${p.tool} on MCP server ${row.name}`, "tool");
				if (!allowedFor(state, tool.name, await this.teamsOf(t, auth, state)))
					throw forbidden(`tool ${tool.name} of MCP server ${row.name} is not on your allow-list`);
				if (tool.requires_approval && !p.approved)
					throw new Errors.MoleculerClientError(
						`tool ${tool.name} of MCP server ${row.name} needs a person's approval (approved: true)`,
						409,
						"APPROVAL_REQUIRED",
						{ server: row.name, tool: tool.name }
					);
				const args = p.arguments ?? {};
				validateArguments(tool.input_schema, args);

				const perTool = tool.calls_per_minute ?? row.tool_calls_per_minute;
				const limits: Limit[] = [
					{
						scope: "organization",
						key: `org:${t.organizationId}`,
						requestsPerMinute: this.cfg.orgCallsPerMinute || null
					},
					{
						scope: `tool:${row.name}/${tool.name}`,
						key: `tool:${t.organizationId}:${row.id}:${tool.name}`,
						requestsPerMinute: perTool || null
					}
				];
				await this.admitLimits(limits, 0, async (limit: Limit) => {
					await this.withEvents(async (_tx, publish) => {
						publish("mcp.server.rate_limit.exceeded", {
							organizationId: t.organizationId,
							serverId: row.id,
							serverName: row.name,
							tool: tool.name,
							scope: limit.scope === "organization" ? "organization" : "tool",
							limit: limit.requestsPerMinute!
						});
					}).catch(err => this.logger.warn(`rate-limit event not written: ${(err as Error).message}`));
				});

				const spec = await this.specFor(state);
				const timeout = Math.min(
					p.timeout_ms ?? row.timeout_ms ?? this.cfg.callTimeoutMs,
					this.cfg.callTimeoutMs
				);
				const executionId = crypto.randomUUID();
				const controller = new AbortController();
				const requestId = ctx.requestID;
				if (requestId) this.inFlight.add(requestId, controller);
				const startedAt = new Date();
				const started = performance.now();
				const rec: ExecutionRecord = {
					id: executionId,
					organizationId: t.organizationId,
					server: row,
					tool: tool.name,
					auth,
					args,
					isError: false,
					outcome: "completed",
					durationMs: 0,
					startedAt,
					secrets: spec.secrets
				};
				const finish = () => {
					rec.durationMs = Math.round(performance.now() - started);
					this.record(rec);
				};
				let result: CallToolResult;
				const entry = await this.pool.acquire(spec).catch(err => {
					rec.outcome = "failed";
					rec.error = redact(`could not connect: ${(err as Error).message}`, spec.secrets);
					finish();
					throw new ExternalFailure(rec.error, 502, "MCP_UNAVAILABLE", { server: row.name });
				});
				entry.inflight++;
				try {
					result = (await entry.client.callTool({ name: tool.name, arguments: args }, undefined, {
						signal: controller.signal,
						timeout,
						onprogress: progress => {
							broadcast(this.broker, "mcp.progress", {
								organizationId: t.organizationId,
								executionId,
								requestId: requestId ?? undefined,
								progress: progress.progress,
								total: progress.total,
								message: progress.message ? redact(progress.message, spec.secrets) : undefined
							});
							announceChange(this.broker, ctx, {
								entity: "mcp-executions",
								noun: "tool call",
								id: executionId,
								action: "updated",
								label: tool.name,
								permission: "mcp:read",
								progress: { done: progress.progress, total: progress.total ?? 0 }
							});
						}
					})) as CallToolResult;
				} catch (err) {
					const e = err as { code?: number; message?: string };
					if (controller.signal.aborted) {
						rec.outcome = "cancelled";
						rec.error = "cancelled by the caller";
					} else if (e?.code === REQUEST_TIMEOUT) {
						rec.outcome = "timeout";
						rec.error = `no answer within ${timeout} ms (the call was cancelled on the server)`;
					} else {
						rec.outcome = "failed";
						rec.error = redact(e?.message ?? String(err), spec.secrets);
					}
					finish();
					if (rec.outcome === "cancelled") throw cancelled("tool call cancelled");
					if (rec.outcome === "timeout")
						throw new ExternalFailure(`tool call timed out: ${rec.error}`, 504, "MCP_TIMEOUT", {
							executionId
						});
					throw new ExternalFailure(`MCP server ${row.name}: ${rec.error}`, 502, "MCP_SERVER_ERROR", {
						executionId
					});
				} finally {
					entry.inflight--;
					entry.lastUsed = Date.now();
					if (requestId) this.inFlight.delete(requestId);
				}

				// The limit is on what the server answered, before anything is kept or returned.
				const size = Buffer.byteLength(JSON.stringify(result));
				if (size > this.cfg.maxResultBytes) {
					rec.outcome = "too_large";
					rec.error = `the result is ${size} bytes, more than the ${this.cfg.maxResultBytes} allowed`;
					finish();
					throw new ExternalFailure(rec.error, 502, "MCP_RESULT_TOO_LARGE", { executionId });
				}
				let isError = !!result.isError;
				let content = (result.content ?? []) as unknown[];
				// A tool that declares an output schema must answer with structured content that matches it.
				if (tool.output_schema && !isError) {
					const problem =
						result.structuredContent === undefined
							? ["structured_content", "is missing, but the tool declares an output schema"]
							: check(tool.output_schema, result.structuredContent, "structured_content");
					if (problem) {
						isError = true;
						const text = `the tool's answer does not match its output schema: ${problem[0]} ${problem[1]}`;
						content = [{ type: "text", text }];
						rec.error = text;
					}
				}
				rec.isError = isError;
				rec.outcome = isError ? "error" : "completed";
				rec.result = { content, structuredContent: result.structuredContent };
				finish();
				const answer: CallAnswer = { execution_id: executionId, is_error: isError, content, duration_ms: 0 };
				if (result.structuredContent !== undefined) answer.structured_content = result.structuredContent;
				answer.duration_ms = rec.durationMs;
				return answer;
			}
		},

		// Discovers the server's capabilities, tools, resources and prompts now and stores them (drift marked).
		discover: {
			permission: "mcp:manage",
			params: { id: "string" },
			response: McpDiscovery,
			async handler(this: McpThis, ctx: Context<{ id: string }>) {
				const t = tenantSql(ctx);
				const state = await this.state(t, ctx.params.id);
				return this.discover(t.organizationId, state.row.id);
			}
		},

		// Pings the server now and records the check (a health transition emits mcp.server.health.changed).
		check: {
			permission: "mcp:manage",
			params: { id: "string" },
			response: McpCheck,
			async handler(this: McpThis, ctx: Context<{ id: string }>) {
				const t = tenantSql(ctx);
				const state = await this.state(t, ctx.params.id);
				return this.checkHealth(t.organizationId, state.row.id);
			}
		},

		// This replica's pool, for operators and tests: live clients and their stdio process groups.
		pool: {
			permission: "mcp:manage",
			response: {
				type: "object",
				props: { clients: "number|integer", pids: { type: "array", items: "number|integer" } }
			},
			handler(this: McpThis) {
				return { clients: this.pool.size, pids: this.pool.pids() };
			}
		}
	},

	events: {
		"mcp.server.changed"(
			this: McpThis,
			ctx: Context<{ organizationId: string; serverId: string; reconnect: boolean }>
		) {
			const { organizationId, serverId, reconnect } = ctx.params;
			for (const key of [...this.states.keys()])
				if (key.startsWith(`${organizationId}:`)) this.states.delete(key);
			this.specs.delete(`${organizationId}:${serverId}`);
			if (reconnect) void this.pool.closeServer(serverId);
		},
		"secrets.changed"(this: McpThis, ctx: Context<{ organizationId: string }>) {
			// Resolved values are part of each spec's version: a pooled connection made with an old value is replaced
			// at its next use.
			for (const key of [...this.specs.keys()])
				if (key.startsWith(`${ctx.params.organizationId}:`)) this.specs.delete(key);
		}
	},

	methods: {
		async state(this: McpThis, t: TenantSql, server: string): Promise<ServerState> {
			const key = `${t.organizationId}:${server}`;
			let pending = this.states.get(key);
			if (!pending) {
				pending = loadState(t, server);
				this.states.set(key, pending);
				pending.catch(() => this.states.delete(key));
			}
			const state = await pending;
			if (!state) {
				this.states.delete(key);
				throw notFound("MCP server", "server");
			}
			return state;
		},

		async specFor(this: McpThis, state: ServerState): Promise<ServerSpec> {
			const row = state.row;
			const key = `${row.organization_id}:${row.id}`;
			let pending = this.specs.get(key);
			if (!pending) {
				const resolve = (name: string) =>
					this.resolveSecret({
						organizationId: row.organization_id,
						environment: row.secret_environment,
						name
					});
				const c = this.cfg;
				const limits = { memoryMb: c.stdioMemoryMb, cpuSeconds: c.stdioCpuSeconds, maxFiles: c.stdioMaxFiles };
				pending = specOf(row, resolve, limits);
				this.specs.set(key, pending);
				pending.catch(() => this.specs.delete(key));
			}
			return pending;
		},

		// The caller's teams, read only when the server has team allow-lists.
		async teamsOf(this: McpThis, t: TenantSql, auth: AuthInfo, state: ServerState): Promise<string[]> {
			if (!state.teamAllow.size || !auth.userId) return [];
			const rows = await t.rows<{ team_id: string }>(
				"SELECT team_id FROM team_members WHERE user_id = $1 AND organization_id = $org",
				[auth.userId]
			);
			return rows.map(r => r.team_id);
		},

		// The log row and its events, in one transaction, off the caller's path (stopping waits for them).
		record(this: McpThis, rec: ExecutionRecord) {
			const write = this.withEvents(async (tx, publish) => {
				await tx.query(
					`INSERT INTO mcp_executions (id, organization_id, server_id, server_name, tool, user_id, api_key_id,
						arguments, result, is_error, outcome, error, duration_ms, started_at)
					 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
					[
						rec.id,
						rec.organizationId,
						rec.server.id,
						rec.server.name,
						rec.tool,
						rec.auth.userId ?? null,
						rec.auth.apiKeyId ?? null,
						JSON.stringify(logged(rec.args, rec.secrets)),
						JSON.stringify(logged(rec.result, rec.secrets)),
						rec.isError,
						rec.outcome,
						rec.error ?? null,
						rec.durationMs,
						rec.startedAt
					]
				);
				const base = {
					organizationId: rec.organizationId,
					executionId: rec.id,
					serverId: rec.server.id,
					serverName: rec.server.name,
					tool: rec.tool,
					...(rec.auth.userId ? { userId: rec.auth.userId } : {}),
					...(rec.auth.apiKeyId ? { apiKeyId: rec.auth.apiKeyId } : {})
				};
				publish("mcp.tool.execution.started", base);
				if (rec.outcome === "completed" || rec.outcome === "error")
					publish("mcp.tool.execution.completed", {
						...base,
						durationMs: rec.durationMs,
						isError: rec.isError,
						...(rec.error ? { error: rec.error } : {})
					});
				else
					publish("mcp.tool.execution.failed", {
						...base,
						durationMs: rec.durationMs,
						outcome: rec.outcome,
						error: rec.error ?? rec.outcome
					});
			}).catch(err => this.logger.error(`execution ${rec.id} not logged: ${(err as Error).message}`));
			this.writes.add(write);
			void write.finally(() => this.writes.delete(write));
		},

		// The read services cache their answers (DbMixin): what discovery and checks wrote must not be served stale.
		async dropCaches(this: McpThis, services: string[]) {
			for (const name of services) await dropCachedAnswers(this.broker, name, this.logger);
		},

		async flush(this: McpThis) {
			while (this.writes.size) await Promise.all([...this.writes]);
		},

		changed(this: McpThis, organizationId: string, serverId: string, reconnect: boolean) {
			void Promise.resolve(
				broadcast(this.broker, "mcp.server.changed", { organizationId, serverId, reconnect })
			).catch(err => this.logger.warn(`mcp.server.changed not sent: ${(err as Error).message}`));
		},

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
		},

		async checkHealth(this: McpThis, organizationId: string, serverId: string) {
			const t = organizationSql(organizationId);
			const state = await this.state(t, serverId);
			const started = performance.now();
			let error: string | undefined;
			let secrets: string[] = [];
			try {
				const spec = await this.specFor(state);
				secrets = spec.secrets;
				const entry = await this.pool.acquire(spec);
				await entry.client.ping({ timeout: Math.min(this.cfg.callTimeoutMs, 10_000) });
			} catch (err) {
				error = redact((err as Error).message, secrets);
			}
			const latencyMs = Math.round(performance.now() - started);
			const health = await this.recordHealth(organizationId, state.row.id, !error, latencyMs, error);
			return { ok: !error, latencyMs, health, ...(error ? { error } : {}) };
		},

		// The check and the transition it causes are one transaction under the server row's lock: however many
		// replicas check at once, each transition is seen (and published) exactly once.
		async recordHealth(
			this: McpThis,
			organizationId: string,
			serverId: string,
			ok: boolean,
			latencyMs: number | null,
			error?: string
		): Promise<Health> {
			const cfg = this.cfg;
			let changed: { from: Health; to: Health; name: string } | undefined;
			const health = await this.withEvents(async (tx, publish) => {
				const row = (
					await tx.query<{
						name: string;
						health: Health;
						consecutive_failures: number;
						consecutive_successes: number;
					}>(
						"SELECT name, health, consecutive_failures, consecutive_successes FROM mcp_servers WHERE id = $1 AND organization_id = $2 FOR UPDATE",
						[serverId, organizationId]
					)
				).rows[0];
				if (!row) return "unknown" as Health;
				const failures = ok ? 0 : row.consecutive_failures + 1;
				const successes = ok ? row.consecutive_successes + 1 : 0;
				let next: Health = row.health;
				if (ok && row.health !== "healthy" && (row.health === "unknown" || successes >= cfg.healthRecoveries))
					next = "healthy";
				if (!ok && row.health !== "unhealthy" && failures >= cfg.healthFailures) next = "unhealthy";
				await tx.query(
					`UPDATE mcp_servers SET consecutive_failures = $2, consecutive_successes = $3, health = $4,
						last_error = CASE WHEN $5::text IS NULL THEN last_error ELSE $5 END,
						health_changed_at = CASE WHEN health <> $4 THEN now() ELSE health_changed_at END
					 WHERE id = $1`,
					[serverId, failures, successes, next, error ?? null]
				);
				await tx.query(
					"INSERT INTO mcp_health_checks (organization_id, server_id, ok, latency_ms, error, health) VALUES ($1, $2, $3, $4, $5, $6)",
					[organizationId, serverId, ok, latencyMs, error ?? null, next]
				);
				if (next !== row.health) {
					changed = { from: row.health, to: next, name: row.name };
					publish("mcp.server.health.changed", {
						organizationId,
						serverId,
						serverName: row.name,
						from: row.health,
						to: next,
						...(error ? { error } : {})
					});
				}
				return next;
			});
			await this.dropCaches(["mcp-servers"]);
			if (changed)
				announceChange(this.broker, undefined, {
					organizationId,
					entity: "mcp-servers",
					noun: "MCP server",
					id: serverId,
					action: "updated",
					label: changed.name,
					permission: "mcp:read"
				});
			return health;
		},

		// Claims the servers due for a health check or a discovery (one replica each: SKIP LOCKED) and runs them.
		async tick(this: McpThis) {
			const db = await getDb();
			const claim = async (column: string, every: number) => {
				if (!every) return [];
				const r = await db.query<{ id: string; organization_id: string }>(
					`UPDATE mcp_servers SET ${column} = now() + $1 * interval '1 millisecond'
					 WHERE id IN (SELECT id FROM mcp_servers WHERE enabled AND ${column} <= now()
						AND (transport <> 'stdio' OR $2) ORDER BY ${column} LIMIT ${CLAIM_BATCH} FOR UPDATE SKIP LOCKED)
					 RETURNING id, organization_id`,
					[every, this.cfg.stdioEnabled]
				);
				return r.rows;
			};
			for (const s of await claim("next_health_at", this.cfg.healthIntervalMs))
				await this.checkHealth(s.organization_id, s.id).catch(err =>
					this.logger.warn(`health check of MCP server ${s.id}: ${(err as Error).message}`)
				);
			for (const s of await claim("next_refresh_at", this.cfg.refreshIntervalMs))
				await this.discover(s.organization_id, s.id).catch(err =>
					this.logger.warn(`discovery of MCP server ${s.id}: ${(err as Error).message}`)
				);
		}
	},

	created(this: Service) {
		const self = this as McpThis;
		self.cfg = moduleSettings(mcpModule);
		self.hostPolicy = new HostPolicy(self.cfg.allowedPrivateHosts, { variable: "MCP_ALLOWED_PRIVATE_HOSTS" });
		self.states = new Map();
		self.specs = new Map();
		self.writes = new Set();
		self.discovering = new Map();
		self.pool = new ClientPool({
			idleTimeoutMs: self.cfg.idleTimeoutMs,
			connectTimeoutMs: Math.min(self.cfg.callTimeoutMs, 30_000),
			hostPolicy: self.hostPolicy,
			hooks: {
				onListChanged: spec => {
					void self
						.discover(spec.organizationId, spec.id)
						.catch(err =>
							self.logger.warn(`discovery after list_changed of ${spec.name}: ${(err as Error).message}`)
						);
				},
				onCrash: (spec, reason) => {
					const why = redact(reason, spec.secrets);
					self.logger.warn(`MCP server ${spec.name} (${spec.id}) crashed: ${why}; restarting`);
					void self.recordHealth(spec.organizationId, spec.id, false, null, why).catch(() => undefined);
				}
			}
		});
	},

	async stopped(this: Service) {
		const self = this as McpThis;
		await self.pool.stop();
		await self.flush();
	}
};

declare module "../../lib/events/types" {
	interface BroadcastEvents {
		// A tool call's progress as the server reported it (never a value of the call's arguments or result).
		"mcp.progress": {
			organizationId: string;
			executionId: string;
			requestId?: string;
			progress: number;
			total?: number;
			message?: string;
		};
	}
}

export default McpService;
