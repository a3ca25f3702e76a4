// What each plan step kind does, one function per kind (planning.kinds.ts validates their config). A step gets the
// idempotency key of its run and position, the same on every attempt and on every replica: a webhook sends it as
// Idempotency-Key, so a receiver that honours it applies a step's effect once even when a replica died after
// sending and the step was sent again. Calls into other modules are made as the execution service for the
// organization (no user is there when a replica resumes a run).
import type { CallingOptions } from "moleculer";
import { egressFetch } from "../../lib/egress-fetch";
import type { HostPolicy } from "../../lib/egress";
import type { StepKind, StepRequest } from "../planning/planning.kinds";
import { uuidFrom } from "./graph-steps";

export interface StepInput {
	kind: StepKind;
	title: string;
	config: Record<string, any>;
	organizationId: string;
	key: string;
	signal: AbortSignal;
	timeoutMs: number;
	approvedBy: string | null;
}

export interface StepEnv {
	policy: HostPolicy;
	call(organizationId: string, action: string, params: unknown, opts?: CallingOptions): Promise<unknown>;
}

// A failure that retrying cannot help (a refused configuration): the step fails at once.
export class PermanentStepError extends Error {
	name = "PermanentStepError";
}

const MAX_BODY = 4000;

// One HTTP request of a step (its webhook, or the request that undoes it), through the platform's egress rules.
export async function sendRequest(env: StepEnv, req: StepRequest, key: string, signal: AbortSignal) {
	const method = req.method ?? "POST";
	const hasBody = method !== "GET" && req.body !== undefined;
	let res: Response;
	try {
		res = await egressFetch(env.policy)(req.url, {
			method,
			headers: { "idempotency-key": key, ...(hasBody ? { "content-type": "application/json" } : {}) },
			body: hasBody ? JSON.stringify(req.body) : undefined,
			signal
		});
	} catch (err) {
		if ((err as { code?: string }).code === "EGRESS_REFUSED") throw new PermanentStepError((err as Error).message);
		throw err;
	}
	const text = (await res.text()).slice(0, MAX_BODY);
	if (res.status >= 400) {
		const message = `${method} ${new URL(req.url).host} answered ${res.status}`;
		// A 4xx other than a timeout or throttling will answer the same again.
		if (res.status < 500 && res.status !== 408 && res.status !== 429) throw new PermanentStepError(message);
		throw new Error(message);
	}
	return { status: res.status, body: text };
}

// A call into another module for the step. Its refusal of the request (a 4xx other than a timeout or throttling:
// an unknown prompt, a missing permission) will be the same on every attempt, so it is not retried.
async function callFor(env: StepEnv, s: StepInput, action: string, params: unknown, timeout: number) {
	try {
		return await env.call(s.organizationId, action, params, { timeout });
	} catch (err) {
		const code = Number((err as { code?: unknown }).code);
		if (code >= 400 && code < 500 && code !== 408 && code !== 429)
			throw new PermanentStepError((err as Error).message);
		throw err;
	}
}

export const STEP_RUNNERS: Record<StepKind, (env: StepEnv, s: StepInput) => Promise<unknown>> = {
	http_webhook: (env, s) => sendRequest(env, s.config as StepRequest, s.key, s.signal),

	ai_completion: (env, s) =>
		callFor(
			env,
			s,
			"prompts.complete",
			{ name: s.config.prompt, variables: s.config.variables ?? {}, subject: `execution:${s.key}` },
			s.timeoutMs
		),

	// The agent is the model (deployment) it runs on; the input is its prompt. An agent run that ends failed fails
	// the step with its error.
	agent_run: async (env, s) => {
		const run = (await callFor(
			env,
			s,
			"ai-agent-runs.start",
			{ model: s.config.agent, prompt: s.config.input || s.title },
			s.timeoutMs
		)) as { status?: string; error?: string | null };
		if (run?.status === "failed") throw new Error(`the agent run failed: ${run.error ?? "no reason given"}`);
		return run;
	},

	// A tool that needs a person's approval runs only when the step was approved (an irreversible step).
	mcp_tool_call: (env, s) =>
		callFor(
			env,
			s,
			"mcp.call",
			{
				server: s.config.server,
				tool: s.config.tool,
				arguments: s.config.arguments ?? {},
				timeout_ms: s.timeoutMs,
				...(s.approvedBy ? { approved: true } : {})
			},
			s.timeoutMs + 1000
		),

	// The approval itself is the step: by the time it runs, a person approved it.
	manual_approval: async (_env, s) => ({ approvedBy: s.approvedBy }),

	// Starts the child workflow run (its id is the step's: asked again, it is the same run); the engine parks the
	// step until that run ends.
	sub_workflow: (env, s) =>
		callFor(
			env,
			s,
			"workflow-definitions.startChild",
			{
				id: uuidFrom(`sub-workflow\0${s.key}`),
				workflow: s.config.workflow,
				inputs: s.config.inputs ?? {},
				parentRunId: s.key.split(":")[0]
			},
			s.timeoutMs
		)
};
