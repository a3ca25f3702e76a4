// /v1/chat/completions with server-side tools: a request naming `tool_sets` (MCP server names, "platform" for the
// platform's own tools) runs as an agent run (agent-runs.service.ts) and answers with its final message in OpenAI's
// shape. `agent: { max_steps?, max_tokens?, max_cost? }` sets the run's limits. The run is in the agent run history
// (`coder.agent_run` names it); a run that pauses for a person's approval answers with what it is waiting for and
// continues when approved in the UI or the API. With `stream: true`: one chunk per step as it happens (no choices,
// the step in `coder.agent_step`, which OpenAI clients ignore), then the answer as content, then [DONE].
import crypto from "crypto";
import type { Context } from "moleculer";
import { cancelCall } from "../../lib/cancel";
import { invalid } from "../../lib/errors";
import { ndjson } from "../../lib/ndjson";
import type { AgentEvent, RunView } from "./agent-loop";

type Res = any;

const STOPPED: Record<string, string> = {
	awaiting_approval: "the run is waiting for a person's approval of a tool call",
	step_limit: "the run stopped at its step limit",
	budget_exceeded: "the run stopped: its budget is used"
};

// The agent run's parameters from an OpenAI request; `tools` are the client's to run, so not with tool_sets.
export function agentRequest(body: Record<string, any>) {
	const { tool_sets, agent, tools, model, messages, requestId } = body;
	if (!Array.isArray(tool_sets) || !tool_sets.length)
		throw invalid("tool_sets", 'must be a list of MCP server names (or "platform")');
	if (tools !== undefined) throw invalid("tools", "tools run by the client cannot be combined with tool_sets");
	if (agent !== undefined && (typeof agent !== "object" || agent === null || Array.isArray(agent)))
		throw invalid("agent", "must be an object: { max_steps?, max_tokens?, max_cost? }");
	return { model, messages, tool_sets, ...(agent ?? {}), ...(requestId ? { requestId } : {}) };
}

function answerOf(run: RunView) {
	const stopped = STOPPED[run.status];
	if (run.status === "failed" || run.status === "cancelled")
		throw Object.assign(new Error(`agent run ${run.status}: ${run.error ?? ""}`), {
			code: run.status === "cancelled" ? 499 : 502,
			type: run.status === "cancelled" ? "CANCELLED" : "AGENT_FAILED"
		});
	return {
		content: stopped ? `${stopped} (agent run ${run.id}).` : (run.output ?? ""),
		finish_reason: run.status === "completed" ? "stop" : "length"
	};
}

const coderOf = (run: RunView) => ({ agent_run: { id: run.id, status: run.status, turns: run.turns } });

// OpenAI's usage object, summed over the run's model turns (cached: of the prompt tokens, where the provider tells).
export const usageOf = (run: RunView) => ({
	prompt_tokens: run.prompt_tokens,
	completion_tokens: run.completion_tokens,
	total_tokens: run.tokens,
	prompt_tokens_details: { cached_tokens: run.cached_tokens }
});

export async function agentCompletion(ctx: Context, body: Record<string, any>): Promise<unknown> {
	const run: RunView = await ctx.call("ai-agent-runs.start", { ...agentRequest(body), stream: false });
	const { content, finish_reason } = answerOf(run);
	return {
		id: `chatcmpl-agent-${run.id}`,
		object: "chat.completion",
		created: Math.floor(Date.now() / 1000),
		model: run.model,
		choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason }],
		usage: usageOf(run),
		coder: coderOf(run)
	};
}

export async function streamAgentCompletion(ctx: Context, res: Res, body: Record<string, any>) {
	const requestId = crypto.randomUUID();
	const stream: any = await ctx.call(
		"ai-agent-runs.start",
		{ ...agentRequest(body), stream: true },
		{ requestID: requestId }
	);
	let ended = false;
	// A client that goes away gets no answer: the run is cancelled wherever it runs.
	res.on("close", () => {
		if (!ended) cancelCall(ctx.broker, "ai-agent-runs", requestId);
	});
	res.writeHead(200, {
		"Content-Type": "text/event-stream; charset=utf-8",
		"Cache-Control": "no-cache",
		Connection: "keep-alive"
	});
	res.flushHeaders?.();
	const id = `chatcmpl-agent-${requestId}`;
	const created = Math.floor(Date.now() / 1000);
	const chunk = (choices: unknown[], extra: object = {}) =>
		res.write(
			`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices, ...extra })}\n\n`
		);
	let last: RunView | undefined;
	try {
		for await (const e of ndjson(stream) as AsyncIterable<AgentEvent>) {
			if (e.type === "run") last = e.run;
			else chunk([], { coder: { agent_step: e.step } });
		}
		if (!last) throw new Error("the run ended without a result");
		const { content, finish_reason } = answerOf(last);
		chunk([{ index: 0, delta: { role: "assistant", content }, logprobs: null, finish_reason: null }]);
		chunk([{ index: 0, delta: {}, logprobs: null, finish_reason }], { coder: coderOf(last) });
		if (body.stream_options?.include_usage) chunk([], { usage: usageOf(last) });
		res.write("data: [DONE]\n\n");
	} catch (err) {
		const e = err as { message?: string; type?: string };
		res.write(
			`data: ${JSON.stringify({ error: { message: e.message, type: "api_error", code: e.type ?? null } })}\n\n`
		);
	} finally {
		ended = true;
		res.end();
	}
}
