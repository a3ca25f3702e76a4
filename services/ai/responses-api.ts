// The Responses API (/v1/responses, `ai.respond`) relayed to OpenAI-dialect upstreams: routed, fallen back, rate
// limited and logged like a chat completion. The answer is the upstream's own, with `model` naming the model that
// served it. A deployment whose provider lacks the API (an Anthropic provider; an OpenAI-compatible server answering
// 404) is skipped for the next one; when none has it, the client gets a 501.
import type { Readable } from "stream";
import OpenAI from "openai";
import { ndjsonReadable } from "../../lib/ndjson";
import { withDeadline } from "../../lib/resilience";
import type { AiThis } from "./ai.types";
import type { Deployment } from "./router";
import { servedBy, type Run } from "./run";
import { checkStreamResponse, classify, UpstreamFailure, type Upstream } from "./upstream";
import { isObject } from "./json";
import { estimateTokens, type Usage } from "./usage";

const ENDED = new Set(["response.completed", "response.incomplete", "response.failed"]);

const UNSUPPORTED = "this model's provider does not offer the Responses API";

// An upstream that has no /v1/responses answers 404 or 405 (not a missing model: that keeps its own error).
async function offered<T>(run: Run, d: Deployment, call: () => Promise<T>): Promise<T> {
	if ((run.cfg.providers.get(d.provider_id)?.kind ?? "openai") !== "openai")
		throw new UpstreamFailure("unsupported", UNSUPPORTED);
	try {
		return await call();
	} catch (err) {
		const missingModel = (err as any)?.error?.code === "model_not_found";
		if (err instanceof OpenAI.APIError && (err.status === 404 || err.status === 405) && !missingModel)
			throw new UpstreamFailure("unsupported", UNSUPPORTED, err.status);
		throw err;
	}
}

async function readResponse(response: Response): Promise<any> {
	const body: unknown = await response.json().catch(() => undefined);
	if (!/json/i.test(response.headers.get("content-type") ?? "") || !isObject(body) || !Array.isArray(body.output))
		throw new UpstreamFailure("bad_response", "the upstream's answer is not an OpenAI-compatible response");
	return body;
}

function outputText(response: any): string {
	let text = "";
	for (const item of response?.output ?? [])
		for (const part of item?.content ?? []) if (typeof part?.text === "string") text += part.text;
	return text;
}

function usageOf(reported: any, input: unknown, text: string): Usage {
	if (typeof reported?.input_tokens === "number")
		return {
			prompt: reported.input_tokens,
			completion: reported.output_tokens ?? 0,
			cached: reported.input_tokens_details?.cached_tokens ?? 0
		};
	return { prompt: estimateTokens(input), completion: estimateTokens(text), cached: 0 };
}

const responsesUsage = (u: Usage) => ({
	input_tokens: u.prompt,
	output_tokens: u.completion,
	total_tokens: u.prompt + u.completion
});

export async function createResponse(svc: AiThis, run: Run): Promise<unknown> {
	const body = run.target.body;
	try {
		const { result, deployment, provider, model } = await svc.withFallbacks(
			run,
			async (d: Deployment, upstream: Upstream, signal: AbortSignal) =>
				readResponse(
					await offered(run, d, () =>
						upstream.sdk.responses
							.create({ ...body, model: d.provider_model, stream: false } as any, { signal })
							.asResponse()
					)
				)
		);
		const usage = usageOf(result.usage, body.input, outputText(result));
		const response = { ...result, model };
		await svc.finish(run, { deployment, provider, model, usage, response });
		run.served = servedBy(run, model, provider);
		return { ...response, coder: run.served };
	} catch (err) {
		throw await svc.fail(run, err);
	} finally {
		svc.inFlight.delete(run.requestId);
	}
}

// NDJSON of the upstream's events (each `{ type: "response.…", … }`), then `{ done, usage, coder }` or `{ error }`.
export async function streamResponse(svc: AiThis, run: Run): Promise<Readable> {
	const body = run.target.body;
	let opened;
	try {
		opened = await svc.withFallbacks(
			run,
			async (d: Deployment, upstream: Upstream, signal: AbortSignal, control: AbortController) => {
				const deadline = run.target.firstTokenTimeoutMs;
				const late = () =>
					control.abort(new UpstreamFailure("first_token_timeout", `no first event within ${deadline} ms`));
				return withDeadline(deadline, late, async () => {
					const { data, response } = await offered(run, d, () =>
						upstream.sdk.responses
							.create({ ...body, model: d.provider_model, stream: true } as any, { signal })
							.withResponse()
					);
					checkStreamResponse(response);
					const iterator = (data as any)[Symbol.asyncIterator]() as AsyncIterator<any>;
					const first = await iterator.next();
					if (signal.aborted) throw signal.reason;
					return { iterator, first };
				});
			}
		);
	} catch (err) {
		svc.inFlight.delete(run.requestId);
		throw await svc.fail(run, err);
	}
	const { deployment, provider, model, control: attempt } = opened;
	const { iterator, first } = opened.result;
	run.served = servedBy(run, model, provider);
	const idleMs = provider.timeout_ms;
	const silent = () => attempt.abort(new UpstreamFailure("timeout", `the upstream sent nothing for ${idleMs} ms`));
	const next = () => withDeadline(idleMs, silent, () => iterator.next());
	const firstTokenMs = Date.now() - run.started;
	let text = "";
	const settle = (status: "error" | "cancelled", error: string) =>
		svc.interrupted(
			run,
			{ deployment, provider, model, firstTokenMs, usage: usageOf(undefined, body.input, text) },
			status,
			error
		);

	async function* events() {
		let final: any;
		let finished = false;
		try {
			for (let step = first; !step.done; step = await next()) {
				let event = step.value;
				if (!isObject(event) || typeof event.type !== "string")
					throw new UpstreamFailure("bad_response", "an event of the upstream's stream has no type");
				if (event.type === "response.output_text.delta" && typeof event.delta === "string") text += event.delta;
				if (isObject(event.response)) event = { ...event, response: { ...event.response, model } };
				if (ENDED.has(event.type)) final = event.response;
				yield event;
			}
			if (attempt.signal.aborted) throw attempt.signal.reason;
			if (!final) throw new UpstreamFailure("connection", "the upstream stream ended before the response did");
			finished = true;
			const usage = usageOf(final.usage, body.input, text);
			await svc.finish(run, { deployment, provider, model, usage, firstTokenMs, response: { content: text } });
			yield { done: true, requestId: run.requestId, usage: responsesUsage(usage), coder: run.served };
		} catch (err) {
			finished = true;
			const gone = readable.destroyed;
			const signal = attempt.signal.aborted ? attempt.signal : run.controller.signal;
			const failure = gone
				? new UpstreamFailure("cancelled", "client disconnected")
				: classify(err, signal, run.secrets);
			if (failure.kind === "cancelled") attempt.abort(failure);
			await settle(failure.kind === "cancelled" ? "cancelled" : "error", failure.message);
			if (!gone)
				yield {
					error: {
						message: `stream interrupted: ${failure.message}`,
						type: "upstream_error",
						code: failure.kind
					}
				};
		} finally {
			svc.inFlight.delete(run.requestId);
			if (!finished) {
				attempt.abort(new UpstreamFailure("cancelled", "client disconnected"));
				await settle("cancelled", "client disconnected").catch(() => undefined);
			}
		}
	}
	const readable = ndjsonReadable(events(), () =>
		run.controller.abort(new UpstreamFailure("cancelled", "client disconnected"))
	);
	return readable;
}
