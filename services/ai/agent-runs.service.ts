// Agent runs: a completion with tools (the platform's own and those of chosen MCP servers), run in a loop
// (agent-loop.ts) that stops at a step limit and a token/cost budget, pauses for a person's approval of tools marked
// so, and can be cancelled at any point. Runs and steps are kept in ai_agent_runs / ai_agent_steps; with
// `stream: true` (the socket's `stream`) every step is sent as it happens, as NDJSON lines
// `{ "type": "run" | "step", ... }`. Other modules call `ai.agent` (ai.service.ts), which answers when the run ends
// or pauses.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { tenantSql, TenantSql } from "../../lib/db/tenant";
import { cancelCall } from "../../lib/cancel";
import { conflict, invalid } from "../../lib/errors";
import { ndjsonReadable } from "../../lib/ndjson";
import type { InFlight } from "../../lib/in-flight";
import { CancellableMixin } from "../../mixins/cancellable.mixin";
import { AgentEvent, Cancelled, drive, Driver, viewOf } from "./agent-loop";
import { catalogueOf } from "./agent-tools";
import { getRun, insertRun, listRuns, RunRow, stepsOf, updateRun, updateStep } from "./agent-store";
import * as R from "./ai.responses";

interface AgentsThis extends Service {
	inFlight: InFlight;
	respond(ctx: Context, t: TenantSql, run: RunRow, stream: boolean): Promise<unknown>;
}

export interface StartParams {
	model: string;
	prompt?: string;
	messages?: any[];
	system?: string;
	tool_sets?: string[];
	max_steps?: number;
	max_tokens?: number;
	max_cost?: number;
	stream?: boolean;
}

export const agentParams = {
	model: { type: "string", min: 1, max: 200, label: "Model" },
	prompt: { type: "string", min: 1, max: 100_000, optional: true, label: "Prompt" },
	system: { type: "string", max: 100_000, optional: true, label: "System prompt" },
	messages: { type: "array", items: "object", min: 1, max: 1000, optional: true },
	// MCP server names (or ids), and "platform" for the platform's own tools.
	tool_sets: { type: "array", items: { type: "string", min: 1, max: 200 }, max: 20, optional: true },
	max_steps: { type: "number", integer: true, min: 1, max: 100, optional: true, convert: true, label: "Step limit" },
	max_tokens: { type: "number", integer: true, positive: true, optional: true, convert: true, label: "Token budget" },
	max_cost: { type: "number", min: 0, optional: true, convert: true, label: "Cost budget ($)" }
};

const DEFAULT_MAX_STEPS = 10;

const AgentsService: ServiceSchema = {
	name: "ai-agent-runs",
	mixins: [CancellableMixin("ai-agent-runs.cancel", why => new Cancelled(why))],
	settings: { rest: "/ai/agent-runs" },

	actions: {
		// Runs until the run ends or pauses for an approval, answering the run with its steps; with `stream`, a stream
		// of its steps as they happen. `external`: a run takes as long as its turns and tools take.
		start: {
			rest: "POST /",
			permission: "ai:write",
			external: true,
			params: { $$strict: "remove", ...agentParams, stream: { type: "boolean", optional: true } },
			response: R.AgentRunDetail,
			async handler(this: AgentsThis, ctx: Context<StartParams>) {
				const p = ctx.params;
				if (!p.prompt && !p.messages) throw invalid("prompt", "give a prompt or messages");
				const t = tenantSql(ctx);
				const toolSets = [...new Set(p.tool_sets ?? [])];
				const tools = await catalogueOf(ctx, toolSets);
				const messages = [
					...(p.system ? [{ role: "system", content: p.system }] : []),
					...(p.messages ?? []),
					...(p.prompt ? [{ role: "user", content: p.prompt }] : [])
				];
				const run = await insertRun(t, {
					user_id: t.auth?.userId ?? null,
					api_key_id: t.auth?.apiKeyId ?? null,
					model: p.model,
					tool_sets: toolSets,
					messages,
					tools,
					max_steps: p.max_steps ?? DEFAULT_MAX_STEPS,
					max_tokens: p.max_tokens ?? null,
					max_cost: p.max_cost ?? null
				});
				return this.respond(ctx, t, run, !!p.stream);
			}
		},

		// A person's approval or rejection of tool calls awaiting one. Once none awaits, the run continues here, on
		// whichever replica received the decision, with the decider's permissions.
		decide: {
			rest: "POST /:id/decisions",
			permission: "ai:write",
			external: true,
			params: {
				$$strict: "remove",
				id: "uuid",
				decisions: {
					type: "array",
					min: 1,
					max: 100,
					items: {
						type: "object",
						strict: "remove",
						props: {
							step_id: "uuid",
							approve: "boolean",
							reason: { type: "string", max: 2000, optional: true }
						}
					}
				},
				stream: { type: "boolean", optional: true }
			},
			response: R.AgentRunDetail,
			async handler(
				this: AgentsThis,
				ctx: Context<{
					id: string;
					decisions: { step_id: string; approve: boolean; reason?: string }[];
					stream?: boolean;
				}>
			) {
				const t = tenantSql(ctx);
				const run = await getRun(t, ctx.params.id);
				if (run.status !== "awaiting_approval")
					throw conflict(`the run is ${run.status.replace("_", " ")}, not awaiting approval`, "id");
				const claimed = await t.transaction(async tx => {
					for (const d of ctx.params.decisions) {
						const by = tx.auth?.userId ?? null;
						const who = tx.auth?.userId ? "a person" : "the API";
						const decided = await updateStep(
							tx,
							d.step_id,
							["awaiting_approval"],
							d.approve
								? { status: "approved", decided_by: by }
								: {
										status: "rejected",
										decided_by: by,
										is_error: true,
										result: {
											content: [
												{
													type: "text",
													text: `rejected by ${who}${d.reason ? `: ${d.reason}` : ""}`
												}
											]
										}
									}
						);
						if (!decided) throw invalid("decisions", `step ${d.step_id} is not awaiting approval`);
					}
					// The run is taken over by this call only when nothing awaits a decision any more.
					const waiting = await tx.one(
						`SELECT 1 FROM ai_agent_steps WHERE run_id = $1 AND organization_id = $org
						 AND status = 'awaiting_approval'`,
						[run.id]
					);
					return waiting ? undefined : updateRun(tx, run.id, "awaiting_approval", { status: "running" });
				});
				if (!claimed) {
					const current = await getRun(t, run.id);
					return { ...viewOf(current), steps: await stepsOf(t, run.id) };
				}
				return this.respond(ctx, t, claimed, !!ctx.params.stream);
			}
		},

		// Stops the run wherever it is: a model turn or tool call in progress is cancelled on whichever replica runs
		// it; a run awaiting approval ends there.
		cancel: {
			rest: "POST /:id/cancel",
			permission: "ai:write",
			params: { id: "uuid" },
			response: R.AgentRun,
			async handler(this: AgentsThis, ctx: Context<{ id: string }>) {
				const t = tenantSql(ctx);
				const run = await getRun(t, ctx.params.id);
				const cancelled = await updateRun(t, run.id, ["running", "awaiting_approval"], {
					status: "cancelled",
					error: "cancelled"
				});
				if (!cancelled) throw conflict(`the run is ${run.status.replace("_", " ")} already`, "id");
				await t.query(
					`UPDATE ai_agent_steps SET status = 'cancelled', updated_at = now()
					 WHERE run_id = $1 AND organization_id = $org AND status IN ('awaiting_approval', 'approved', 'running')`,
					[run.id]
				);
				cancelCall(this.broker, "ai-agent-runs", run.id);
				return viewOf(cancelled);
			}
		},

		list: {
			rest: "GET /",
			permission: "ai:read",
			params: {
				$$strict: "remove",
				limit: { type: "number", integer: true, min: 1, max: 500, optional: true, convert: true },
				status: { type: "enum", values: R.AGENT_RUN_STATUSES, optional: true }
			},
			response: { type: "array", items: R.AgentRun },
			async handler(ctx: Context<{ limit?: number; status?: string }>) {
				return listRuns(tenantSql(ctx), ctx.params.limit ?? 50, ctx.params.status);
			}
		},

		get: {
			rest: "GET /:id",
			permission: "ai:read",
			params: { id: "uuid" },
			response: R.AgentRunDetail,
			async handler(ctx: Context<{ id: string }>) {
				const t = tenantSql(ctx);
				const run = await getRun(t, ctx.params.id);
				const first = run.messages.findIndex(m => m.role === "assistant");
				const asked = (first < 0 ? run.messages : run.messages.slice(0, first)).filter(m => m.role === "user");
				const prompt = asked.at(-1)?.content;
				return {
					...viewOf(run),
					prompt: typeof prompt === "string" ? prompt : null,
					steps: await stepsOf(t, run.id)
				};
			}
		}
	},

	methods: {
		// Drives the run: to its end or pause before answering, or (stream) answering at once with the steps as they
		// come. A stream's reader that goes away does not stop the run (closing a page is not a cancellation); the
		// socket's `cancel` does, through ai-agent-runs.cancel with the call's request id.
		async respond(this: AgentsThis, ctx: Context, t: TenantSql, run: RunRow, stream: boolean) {
			const controller = new AbortController();
			const keys = [run.id, ctx.requestID].filter((k): k is string => !!k);
			for (const k of keys) this.inFlight.add(k, controller);
			const queue: AgentEvent[] = [];
			let wake: (() => void) | undefined;
			let ended = false;
			const d: Driver = {
				ctx,
				t,
				signal: controller.signal,
				emit: e => {
					if (!stream) return;
					queue.push(e);
					wake?.();
				}
			};
			const running = drive(d, run).finally(() => {
				for (const k of keys) this.inFlight.delete(k);
				ended = true;
				wake?.();
			});
			if (!stream) {
				const final = await running;
				return { ...viewOf(final), steps: await stepsOf(t, final.id) };
			}
			running.catch(err => this.logger.error(`agent run ${run.id} failed: ${(err as Error).message}`));
			async function* events() {
				for (;;) {
					while (queue.length) yield queue.shift();
					if (ended) return;
					await new Promise<void>(r => (wake = r));
					wake = undefined;
				}
			}
			return ndjsonReadable(events());
		}
	}
};

export default AgentsService;
