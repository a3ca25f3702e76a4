// mcp: the runtime. Tool calls (`mcp.call`, also POST /api/mcp/call for the UI's "try it") on pooled clients
// (pool.ts), each logged (execution-log.ts); discovery of a server's tools, resources and prompts (`mcp.discover`,
// discovery.ts); health checks (`mcp.check`) and the schedule that runs both for every enabled server on one replica
// at a time (health.ts).
import crypto from "crypto";
import type { Context, Service } from "moleculer";
import { Errors } from "moleculer";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { ServiceSchema } from "../../lib/schema";
import { authOf } from "../../lib/authz";
import { moduleSettings } from "../../lib/config";
import { tenantSql, type TenantSql } from "../../lib/db/tenant";
import { HostPolicy } from "../../lib/egress";
import { conflict, ExternalFailure, forbidden, notFound } from "../../lib/errors";
import { broadcast } from "../../lib/events/broadcast";
import { announceChange } from "../../lib/live";
import { redact } from "../../lib/redact";
import { idempotencyKeyParam, idempotent } from "../../lib/idempotency";
import type { AuthInfo } from "../../lib/permissions";
import { CancellableMixin } from "../../mixins/cancellable.mixin";
import { dropCachedAnswers } from "../../mixins/cached-answers.mixin";
import { EventsMixin } from "../../mixins/events.mixin";
import { RateLimitMixin, type Limit } from "../../mixins/rate-limit.mixin";
import { SecretsClientMixin } from "../../mixins/secrets-client.mixin";
import { UsageLimitsMixin } from "../../mixins/usage-limits.mixin";
import mcpModule from "./mcp.module";
import { ClientPool, type ServerSpec } from "./pool";
import { check, validateArguments } from "./schemas";
import { allowedFor, loadState, specOf, type ServerState } from "./state";
import { McpCall, McpCheck, McpDiscovery } from "./mcp.responses";
import { ExecutionLog } from "./execution-log";
import { Discovery } from "./discovery";
import { HealthChecks } from "./health";
import { OAuth } from "./oauth";
import type { CallAnswer, CallParams, ExecutionRecord, McpThis } from "./mcp.types";
import "./mcp.events";

export type { CallAnswer, CallParams, McpThis } from "./mcp.types";

// The SDK's ErrorCode.RequestTimeout (its McpError), by value: the SDK is loaded only with the first client.
const REQUEST_TIMEOUT = -32001;

const cancelled = (why: string) => new Errors.MoleculerError(why, 499, "CANCELLED");

const McpService: ServiceSchema = {
	name: "mcp",
	mixins: [
		EventsMixin,
		SecretsClientMixin,
		RateLimitMixin("mcp"),
		UsageLimitsMixin,
		CancellableMixin("mcp.cancel", why => cancelled(`tool call ${why}`), { drainOnStop: false }),
		ExecutionLog,
		Discovery,
		HealthChecks,
		OAuth
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
				approved: { type: "boolean", optional: true },
				idempotency_key: idempotencyKeyParam
			},
			response: McpCall,
			// With an idempotency key, a call repeated within the window answers the first call's answer again.
			handler(this: McpThis, ctx: Context<CallParams>): Promise<CallAnswer> {
				const org = authOf(ctx)!.organizationId!;
				return idempotent("mcp_idempotency_keys", org, ctx.params.idempotency_key, () => this.callTool(ctx));
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
		// One tool call (call, past its idempotency key).
		async callTool(this: McpThis, ctx: Context<CallParams>): Promise<CallAnswer> {
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
			await this.admitToolCall({
				organizationId: t.organizationId,
				userId: auth.userId,
				apiKeyId: auth.apiKeyId
			});

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
			const timeout = Math.min(p.timeout_ms ?? row.timeout_ms ?? this.cfg.callTimeoutMs, this.cfg.callTimeoutMs);
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
		},

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
				pending = specOf(row, resolve, limits).then(spec =>
					row.transport === "stdio" ? spec : { ...spec, authProvider: this.oauthProvider(row, false) }
				);
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

		// The read services cache their answers (DbMixin): what discovery and checks wrote must not be served stale.
		async dropCaches(this: McpThis, services: string[]) {
			for (const name of services) await dropCachedAnswers(this.broker, name, this.logger);
		},

		changed(this: McpThis, organizationId: string, serverId: string, reconnect: boolean) {
			void Promise.resolve(
				broadcast(this.broker, "mcp.server.changed", { organizationId, serverId, reconnect })
			).catch(err => this.logger.warn(`mcp.server.changed not sent: ${(err as Error).message}`));
		}
	},

	created(this: Service) {
		const self = this as McpThis;
		self.cfg = moduleSettings(mcpModule);
		self.hostPolicy = new HostPolicy(self.cfg.allowedPrivateHosts, { variable: "MCP_ALLOWED_PRIVATE_HOSTS" });
		self.states = new Map();
		self.specs = new Map();
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
