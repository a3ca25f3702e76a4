// The agent loop: model turn, the tool calls it asked for (in parallel), their results back to the model, until the
// model answers without tools, the step limit or the budget stops it, a tool needs a person's approval (the run
// pauses, persisted, and whichever replica receives the decision continues it), it fails or it is cancelled. Every
// call is made with the context of whoever drives the run (its starter, or the approver after a pause), so their
// permissions and the usage module's quotas and budgets apply as to any other call (ai.complete reserves and settles
// each turn). Each step is written before it is told to the client (`emit`).
import type { Context } from "moleculer";
import type { TenantSql } from "../../lib/db/tenant";
import { cancelCall } from "../../lib/cancel";
import { announceChange } from "../../lib/live";
import { functionsOf, resultText, runTool } from "./agent-tools";
import { insertStep, RunRow, RunStatus, StepRow, stepsOf, updateRun, updateStep } from "./agent-store";

export type RunView = Omit<RunRow, "messages" | "tools">;
export type AgentEvent = { type: "run"; run: RunView } | { type: "step"; step: StepRow };

export interface Driver {
	ctx: Context;
	t: TenantSql;
	signal: AbortSignal;
	emit(e: AgentEvent): void;
}

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
	const next = (await updateRun(d.t, run.id, "running", { status, ...set })) ?? (await reload(d, run));
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
		if (err instanceof Cancelled || d.signal.aborted) {
			const cancelled = await updateRun(d.t, run.id, ["running", "awaiting_approval"], { status: "cancelled" });
			const final = cancelled ?? (await reload(d, run));
			announce(d, final);
			return final;
		}
		// The usage module's quota or budget refused the next turn.
		const status = e.type === "BUDGET_EXCEEDED" || e.type === "QUOTA_EXCEEDED" ? "budget_exceeded" : "failed";
		return settle(d, run, status, { error: String(e.message ?? err).slice(0, 2000) });
	}
}

async function modelTurn(d: Driver, run: RunRow): Promise<RunRow> {
	const seq = run.turns + 1;
	const requestId = `agent-${run.id}-${seq}`;
	const tools = functionsOf(run.tools);
	const meta = d.ctx.meta as { aiCost?: number };
	delete meta.aiCost;
	const answer: any = await abortable(d, "ai", requestId, () =>
		d.ctx.call("ai.complete", {
			model: run.model,
			messages: run.messages,
			...(tools.length ? { tools } : {}),
			requestId
		})
	);
	// ai.complete tells what the turn cost in meta, which Moleculer merges back into the caller's.
	const cost = Number(meta.aiCost ?? 0);
	const message = answer.choices?.[0]?.message ?? { role: "assistant", content: "" };
	const calls: any[] = message.tool_calls ?? [];
	const tokens = answer.usage?.total_tokens ?? 0;
	const assistant = {
		role: "assistant",
		content: message.content ?? null,
		...(calls.length ? { tool_calls: calls } : {})
	};
	const step = await insertStep(d.t, run.id, {
		kind: "model",
		status: "completed",
		content: message.content ?? null,
		tool_calls: calls.length ? calls : null,
		tokens,
		cost
	});
	d.emit({ type: "step", step });
	// The tool steps, each written before anything runs: a pause or a crash leaves them for whoever continues.
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
		const s = await insertStep(d.t, run.id, {
			kind: "tool",
			status: problem ? "failed" : tool.requires_approval ? "awaiting_approval" : "running",
			call_id: c.id,
			tool: tool?.tool ?? c.function?.name ?? null,
			server: tool ? (tool.server ?? "platform") : null,
			arguments: args ?? c.function?.arguments ?? null
		});
		const shown = problem
			? await updateStep(d.t, s.id, ["failed"], {
					result: { content: [{ type: "text", text: `error: ${problem}` }] },
					is_error: true
				})
			: s;
		d.emit({ type: "step", step: shown ?? s });
	}
	const next = await updateRun(d.t, run.id, "running", {
		messages: [...run.messages, assistant],
		turns: seq,
		tokens: run.tokens + tokens,
		cost: Number(run.cost) + cost
	});
	if (!next) throw new Cancelled("cancelled");
	return next;
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
		toRun.map(async s => {
			const fn = calls.find(c => c.id === s.call_id)?.function?.name;
			const requestId = `agent-${run.id}-tool-${s.seq}`;
			const outcome = await abortable(d, "mcp", requestId, () =>
				runTool(d.ctx, run.tools[fn], (s.arguments ?? {}) as Record<string, unknown>, {
					approved: s.status === "approved",
					requestId
				})
			);
			const { duration_ms, is_error, ...result } = outcome;
			const updated = await updateStep(d.t, s.id, ["running", "approved"], {
				status: is_error ? "failed" : "completed",
				result,
				is_error,
				duration_ms
			});
			if (updated) d.emit({ type: "step", step: updated });
			return updated ?? s;
		})
	);
	// The calls that need no decision have run; those waiting for one keep the turn open.
	if (steps.some(s => s.status === "awaiting_approval")) return undefined;
	const byCall = new Map([...steps, ...done].map(s => [s.call_id, s]));
	const results = calls.map(c => {
		const s = byCall.get(c.id);
		const text = s?.result ? resultText(s.result as { content: unknown[] }) : "error: the call did not run";
		return { role: "tool", tool_call_id: c.id, content: text };
	});
	const next = await updateRun(d.t, run.id, "running", { messages: [...run.messages, ...results] });
	if (!next) throw new Cancelled("cancelled");
	return next;
}
