// The agent loop: model turn, the tool calls it asked for (in parallel), their results back to the model, until the
// model answers without tools, the step limit or the budget stops it, a tool needs a person's approval (the run
// pauses, persisted, and whichever replica receives the decision continues it), it fails or it is cancelled. Every
// call is made with the context of whoever drives the run (its starter, or the approver after a pause), so their
// permissions and the usage module's quotas and budgets apply as to any other call (ai.complete reserves and settles
// each turn). Each step is written before it is told to the client (`emit`).
//
// Durability (README "Agents"): the loop's writes go through `commit`, which a job (agent-runs.service.ts) runs only
// while its replica holds the run's lease. A model turn is committed as one transaction (its step, its tool calls'
// steps and the run's conversation), so a turn is either wholly recorded or redone on resume; a recorded step is never
// redone. A tool call is recorded (its idempotency key, call_started_at) before it is made; on resume, a call that was
// started but has no result is made again only when its tool is safe to repeat (`retry_safe`: read-only or idempotent),
// else it is answered to the model as interrupted, outcome unknown.
import type { Context } from "moleculer";
import type { TenantSql } from "../../lib/db/tenant";
import { cancelCall } from "../../lib/cancel";
import { announceChange } from "../../lib/live";
import { JobStopped } from "../../mixins/jobs.mixin";
import { AgentTool, countedOnRun, functionsOf, limitRefusal, resultText, runTool } from "./agent-tools";
import { insertStep, RunRow, RunStatus, StepRow, stepsOf, updateRun, updateStep } from "./agent-store";

export type RunView = Omit<RunRow, "messages" | "tools">;
export type AgentEvent = { type: "run"; run: RunView } | { type: "step"; step: StepRow };

export interface Driver {
	ctx: Context;
	t: TenantSql;
	signal: AbortSignal;
	emit(e: AgentEvent): void;
	// Runs the writes in one transaction while this replica may still drive the run (throws JobStopped otherwise).
	commit<T>(fn: (t: TenantSql) => Promise<T>): Promise<T>;
	// Ends the job driving the run, in the transaction that pauses it for an approval.
	release?(t: TenantSql): Promise<void>;
}

// What the model reads for a call whose replica died after making it and before recording its result.
export const INTERRUPTED =
	"error: interrupted: the call was started but its outcome is unknown (the server running it stopped); it was not " +
	"repeated because the tool is not known to be safe to repeat";

export class Cancelled extends Error {
	name = "Cancelled";
}

export const viewOf = ({ messages: _m, tools: _t, ...run }: RunRow): RunView => run;

// A call that stops waiting when the run is cancelled, and asks the replica running it to stop too.
async function abortable<T>(d: Driver, service: string, requestId: string, call: () => Promise<T>): Promise<T> {
	if (d.signal.aborted) throw new Cancelled("cancelled");
	let onAbort!: () => void;
	const stopped = new Promise<never>((_, reject) => {
		onAbort = () => {
			cancelCall(d.ctx.broker, service, requestId);
			reject(new Cancelled("cancelled"));
		};
		d.signal.addEventListener("abort", onAbort, { once: true });
	});
	try {
		return await Promise.race([call(), stopped]);
	} finally {
		d.signal.removeEventListener("abort", onAbort);
	}
}

function announce(d: Driver, run: RunRow) {
	d.emit({ type: "run", run: viewOf(run) });
	announceChange(d.ctx.broker, d.ctx, {
		entity: "ai-agent-runs",
		noun: "agent run",
		id: run.id,
		action: "updated",
		label: run.model,
		permission: "ai:read"
	});
}

// The run's end (or pause). Undefined from updateRun: it was cancelled meanwhile, which stands.
async function settle(d: Driver, run: RunRow, status: RunStatus, set: Partial<RunRow> = {}): Promise<RunRow> {
	const updated = await d.commit(async t => {
		const u = await updateRun(t, run.id, "running", { status, ...set });
		if (u && status === "awaiting_approval") await d.release?.(t);
		return u;
	});
	const next = updated ?? (await reload(d, run));
	announce(d, next);
	return next;
}

const reload = async (d: Driver, run: RunRow) =>
	(await d.t.one<RunRow>("SELECT * FROM ai_agent_runs WHERE id = $1 AND organization_id = $org", [run.id])) ?? run;

export async function drive(d: Driver, start: RunRow): Promise<RunRow> {
	let run = start;
	announce(d, run);
	try {
		for (;;) {
			// A turn whose tool calls are not all answered yet: run them (or pause for a person's decision).
			if (run.messages.at(-1)?.tool_calls?.length) {
				const answered = await finishTurn(d, run);
				if (!answered) return await settle(d, run, "awaiting_approval");
				run = answered;
			}
			if (d.signal.aborted) throw new Cancelled("cancelled");
			if (run.turns >= run.max_steps)
				return await settle(d, run, "step_limit", { error: `stopped at the step limit (${run.max_steps})` });
			if (run.max_tokens != null && run.tokens >= run.max_tokens)
				return await settle(d, run, "budget_exceeded", {
					error: `token budget used: ${run.tokens} of ${run.max_tokens}`
				});
			if (run.max_cost != null && run.cost >= run.max_cost)
				return await settle(d, run, "budget_exceeded", {
					error: `cost budget used: $${run.cost} of $${run.max_cost}`
				});
			run = await modelTurn(d, run);
			if (!run.messages.at(-1)?.tool_calls?.length)
				return await settle(d, run, "completed", { output: run.messages.at(-1)?.content ?? "" });
		}
	} catch (err) {
		const e = err as { type?: string; message?: string };
		if (err instanceof JobStopped) throw err;
		// Only the cancel action cancels a run (it writes so first); any other stop (this replica's service stopping,
		// its lease lost) hands the run over, still running, to whichever replica claims it next.
		if (err instanceof Cancelled || d.signal.aborted) {
			const current = await reload(d, run);
			if (current.status === "running") throw new JobStopped("the run was stopped on this replica");
			announce(d, current);
			return current;
		}
		// The usage module's quota or budget refused the next turn.
		const status = limitRefusal(err) ? "budget_exceeded" : "failed";
		return settle(d, run, status, { error: String(e.message ?? err).slice(0, 2000) }).catch(async failed => {
			if (failed instanceof JobStopped) throw failed;
			throw err;
		});
	}
}

async function modelTurn(d: Driver, run: RunRow): Promise<RunRow> {
	const seq = run.turns + 1;
	const requestId = `agent-${run.id}-${seq}`;
	const tools = functionsOf(run.tools);
	const meta = d.ctx.meta as { aiCost?: number };
	delete meta.aiCost;
	const answer: any = await abortable(d, "ai", requestId, () =>
		d.ctx.call(
			"ai.complete",
			{ model: run.model, messages: run.messages, ...(tools.length ? { tools } : {}), requestId },
			{ meta: { countedOnRun: countedOnRun(run.tools) } }
		)
	);
	// ai.complete tells what the turn cost in meta, which Moleculer merges back into the caller's.
	const cost = Number(meta.aiCost ?? 0);
	const message = answer.choices?.[0]?.message ?? { role: "assistant", content: "" };
	const calls: any[] = message.tool_calls ?? [];
	const usage = answer.usage ?? {};
	const tokens = usage.total_tokens ?? 0;
	const assistant = {
		role: "assistant",
		content: message.content ?? null,
		...(calls.length ? { tool_calls: calls } : {})
	};
	// The turn, its tool calls' steps (none run yet) and the conversation: one commit, so a turn is recorded whole or
	// not at all (then redone by whoever resumes the run).
	const { next, shown } = await d.commit(async t => {
		const shown: StepRow[] = [
			await insertStep(t, run.id, {
				kind: "model",
				status: "completed",
				content: message.content ?? null,
				tool_calls: calls.length ? calls : null,
				tokens,
				cost
			})
		];
		for (const c of calls) {
			const tool = run.tools[c.function?.name];
			let args: unknown;
			let problem: string | undefined;
			try {
				args = JSON.parse(c.function?.arguments || "{}");
			} catch {
				problem = "the arguments are not valid JSON";
			}
			if (!tool) problem = `there is no tool named ${c.function?.name}`;
			const s = await insertStep(t, run.id, {
				kind: "tool",
				status: problem ? "failed" : tool.requires_approval ? "awaiting_approval" : "running",
				call_id: c.id,
				tool: tool?.tool ?? c.function?.name ?? null,
				server: tool ? (tool.server ?? "platform") : null,
				arguments: args ?? c.function?.arguments ?? null
			});
			const failed = problem
				? await updateStep(t, s.id, ["failed"], {
						result: { content: [{ type: "text", text: `error: ${problem}` }] },
						is_error: true
					})
				: undefined;
			shown.push(failed ?? s);
		}
		const next = await updateRun(t, run.id, "running", {
			messages: [...run.messages, assistant],
			turns: seq,
			tokens: run.tokens + tokens,
			prompt_tokens: run.prompt_tokens + (usage.prompt_tokens ?? 0),
			completion_tokens: run.completion_tokens + (usage.completion_tokens ?? 0),
			cached_tokens: run.cached_tokens + (usage.prompt_tokens_details?.cached_tokens ?? 0),
			cost: Number(run.cost) + cost
		});
		return { next, shown };
	});
	if (!next) throw new Cancelled("cancelled");
	for (const step of shown) d.emit({ type: "step", step });
	return next;
}

// Whether a started call without a recorded result may be made again.
const retrySafe = (tool: AgentTool | undefined) => !!tool?.retry_safe;

// One tool call: recorded with its idempotency key before it is made, its result recorded after. A call found started
// (a replica died during it) is made again under the same key only when its tool is safe to repeat; otherwise it is
// answered as interrupted.
async function callTool(d: Driver, run: RunRow, s: StepRow, fn: string | undefined): Promise<StepRow> {
	const tool = fn ? run.tools[fn] : undefined;
	if (s.call_started_at && !retrySafe(tool)) {
		const interrupted = await d.commit(t =>
			updateStep(t, s.id, ["running", "approved"], {
				status: "interrupted",
				is_error: true,
				result: { content: [{ type: "text", text: INTERRUPTED }] }
			})
		);
		if (interrupted) d.emit({ type: "step", step: interrupted });
		return interrupted ?? s;
	}
	const key = s.idempotency_key ?? `agent-${run.id}-tool-${s.seq}`;
	const recorded = await d.commit(t =>
		updateStep(t, s.id, ["running", "approved"], {
			idempotency_key: key,
			call_started_at: new Date().toISOString(),
			attempts: s.attempts + 1
		})
	);
	if (!recorded) return s;
	// An MCP tool call is checked against the tool-call quotas once, by mcp.call before it is sent.
	const outcome = await abortable(d, "mcp", key, () =>
		runTool(d.ctx, tool!, (s.arguments ?? {}) as Record<string, unknown>, {
			approved: s.status === "approved",
			requestId: key
		})
	).catch(async err => {
		if (!limitRefusal(err)) throw err;
		// Refused: the call was not made; the run ends on the refusal (drive), as when a model turn is refused.
		const refused = await d.commit(t =>
			updateStep(t, s.id, ["running", "approved"], {
				status: "failed",
				is_error: true,
				result: { content: [{ type: "text", text: `error: ${(err as Error).message}` }] }
			})
		);
		if (refused) d.emit({ type: "step", step: refused });
		throw err;
	});
	const { duration_ms, is_error, ...result } = outcome;
	const updated = await d.commit(t =>
		updateStep(t, s.id, ["running", "approved"], {
			status: is_error ? "failed" : "completed",
			result,
			is_error,
			duration_ms
		})
	);
	if (updated) d.emit({ type: "step", step: updated });
	return updated ?? s;
}

// The last turn's tool calls: those approved or not needing approval run in parallel; then, unless one still awaits
// a decision (undefined: the run pauses), every result (a rejection's too) goes back to the model in the calls' order.
async function finishTurn(d: Driver, run: RunRow): Promise<RunRow | undefined> {
	const calls: any[] = run.messages.at(-1).tool_calls;
	const all = await stepsOf(d.t, run.id);
	const lastModel = all.filter(s => s.kind === "model").at(-1)!;
	const steps = all.filter(s => s.kind === "tool" && s.seq > lastModel.seq);
	const toRun = steps.filter(s => s.status === "running" || s.status === "approved");
	const done = await Promise.all(
		toRun.map(s => callTool(d, run, s, calls.find(c => c.id === s.call_id)?.function?.name))
	);
	// The calls that need no decision have run; those waiting for one keep the turn open.
	if (steps.some(s => s.status === "awaiting_approval")) return undefined;
	const byCall = new Map([...steps, ...done].map(s => [s.call_id, s]));
	const results = calls.map(c => {
		const s = byCall.get(c.id);
		const text = s?.result ? resultText(s.result as { content: unknown[] }) : "error: the call did not run";
		return { role: "tool", tool_call_id: c.id, content: text };
	});
	const next = await d.commit(t => updateRun(t, run.id, "running", { messages: [...run.messages, ...results] }));
	if (!next) throw new Cancelled("cancelled");
	return next;
}
