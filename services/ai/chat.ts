// Chat completions, whole or streamed, through the fallbacks, the cache and the deadlines of each attempt.
import type { ServiceSchema } from "../../lib/schema";
import { getDb } from "../../lib/db";
import { makeEvent } from "../../lib/events/outbox";
import { withDeadline } from "../../lib/resilience";
import { ndjsonReadable } from "../../lib/ndjson";
import { cacheKey } from "./cache";
import { Deployment } from "./router";
import { Run, servedBy } from "./run";
import { UpstreamFailure, classify } from "./upstream";
import type { Upstream } from "./upstream";
import { readChatCompletion, checkStreamResponse, checkChunk } from "./upstream";
import { StreamedToolCalls } from "./tool-calls";
import { usageOf } from "./usage";
import { AiThis } from "./ai.types";

export const ChatMethods: Partial<ServiceSchema> = {
	methods: {
		async completeChat(this: AiThis, run: Run) {
			const cfg = run.cfg;
			const body = run.target.body;
			// Deterministic requests only (temperature 0, or an explicit opt-in); `cache: false` bypasses.
			const deterministic = run.target.cache !== false && (body.temperature === 0 || run.target.cache === true);
			const key = deterministic ? cacheKey(run.org, run.target.requested, body) : undefined;
			try {
				if (key) {
					const cached = await this.cache.get(await getDb(), run.org, key);
					if (cached) {
						await this.settleTokens(run, 0);
						await this.cache.hit(await getDb(), run.org, key);
						run.events.push(
							makeEvent("ai.completion.completed", {
								requestId: run.requestId,
								model: run.target.requested,
								tokensUsed: 0,
								durationMs: Date.now() - run.started
							})
						);
						await this.record(run, {
							status: "success",
							cacheHit: true,
							servedModel: cached.model,
							response: cached
						});
						run.served = servedBy(run, cached.model, null, true);
						return { ...cached, id: `chatcmpl-${run.requestId}`, coder: run.served };
					}
				}
				// The raw answer, read and checked here: the SDK has already turned any non-2xx into its error by then.
				const { result, deployment, provider, model } = await this.withFallbacks(
					run,
					async (d: Deployment, upstream: Upstream, signal: AbortSignal) =>
						readChatCompletion(await upstream.chat.complete({ ...body, model: d.provider_model }, signal))
				);
				const text = result.choices?.map((c: any) => c.message?.content ?? "").join("") ?? "";
				const usage = usageOf(result.usage, body.messages, text);
				// `model` is the model that answered (a fallback's, a preset's target), as OpenAI's answers name theirs.
				const response = {
					...result,
					model,
					usage: {
						prompt_tokens: usage.prompt,
						completion_tokens: usage.completion,
						total_tokens: usage.prompt + usage.completion,
						prompt_tokens_details: { cached_tokens: usage.cached }
					}
				};
				await this.finish(run, { deployment, provider, model, usage, response });
				if (key)
					await this.cache.set(await getDb(), run.org, key, model, response, cfg.settings.cacheTtlSeconds);
				run.served = servedBy(run, model, provider);
				return { ...response, coder: run.served };
			} catch (err) {
				throw await this.fail(run, err);
			} finally {
				this.inFlight.delete(run.requestId);
			}
		},

		async streamChat(this: AiThis, run: Run) {
			const body = run.target.body;
			let firstTokenAt = 0;
			let opened: any;
			try {
				opened = await this.withFallbacks(
					run,
					async (d: Deployment, upstream: Upstream, signal: AbortSignal, control: AbortController) => {
						// The first token must arrive in time, or the next deployment gets the request.
						const deadline = run.target.firstTokenTimeoutMs;
						const late = () =>
							control.abort(
								new UpstreamFailure("first_token_timeout", `no first token within ${deadline} ms`)
							);
						return withDeadline(deadline, late, async () => {
							const { response, chunks: iterator } = await upstream.chat.stream(
								{ ...body, model: d.provider_model, stream_options: { include_usage: true } },
								signal
							);
							checkStreamResponse(response);
							const first = await iterator.next();
							// An aborted read may look like a clean end of stream: the signal says which it was.
							if (signal.aborted) throw signal.reason;
							if (!first.done) checkChunk(first.value);
							firstTokenAt = Date.now();
							return { iterator, first };
						});
					}
				);
			} catch (err) {
				this.inFlight.delete(run.requestId);
				throw await this.fail(run, err);
			}
			const { deployment, provider, model, control: attempt } = opened;
			const { iterator, first } = opened.result;
			run.served = servedBy(run, model, provider);
			const self = this;
			// Who answered, for the log row of a stream that ends early (firstTokenAt is known by then).
			const served = () => ({ deployment, provider, model, firstTokenMs: firstTokenAt - run.started });
			// One id for every chunk of the answer, whichever upstream (and fallback) produced it.
			const id = `chatcmpl-${run.requestId}`;
			// A stream has no total deadline (a long answer takes minutes), only the provider's timeout for silence.
			const idleMs = provider.timeout_ms;
			const silent = () =>
				attempt.abort(new UpstreamFailure("timeout", `the upstream sent nothing for ${idleMs} ms`));
			const next = () => withDeadline(idleMs, silent, () => iterator.next());

			async function* lines() {
				let text = "";
				let reported: any;
				let finishReason: string | undefined;
				let finished = false;
				const started = new Set<number>();
				const toolCalls = new StreamedToolCalls();
				try {
					for (let step = first; !step.done; step = await next()) {
						const { usage, ...chunk } = step.value;
						checkChunk(chunk);
						if (usage) reported = usage;
						// A chunk without choices (Azure's prompt filter results, the usage-only last chunk) has nothing
						// for the client: usage is told once, at the end.
						if (!chunk.choices.length) continue;
						// Each choice opens as OpenAI's do, with a delta that has the role and no tokens: the SDK's stream
						// helper needs the role, and counts the first chunk's logprobs twice.
						const openers: any[] = [];
						const choices = chunk.choices.map((c: any, i: number) => {
							const index = c.index ?? i;
							text += c.delta?.content ?? "";
							toolCalls.add(index, c.delta?.tool_calls);
							if (c.finish_reason) finishReason = c.finish_reason;
							if (started.has(index)) return { ...c, index };
							started.add(index);
							if (!c.delta?.role || c.logprobs?.content?.length)
								openers.push({
									index,
									delta: { role: "assistant", content: c.delta?.tool_calls ? null : "" },
									logprobs: c.logprobs ? { content: [], refusal: null } : null,
									finish_reason: null
								});
							return { ...c, index };
						});
						if (openers.length) yield { ...chunk, id, model, choices: openers };
						yield { ...chunk, id, model, choices };
					}
					if (attempt.signal.aborted) throw attempt.signal.reason;
					// Every complete OpenAI stream says why it finished; one that just stops was cut off.
					if (!finishReason)
						throw new UpstreamFailure("connection", "the upstream stream ended before the model finished");
					finished = true;
					const usage = usageOf(reported, body.messages, text);
					await self.finish(run, {
						deployment,
						provider,
						model,
						usage,
						firstTokenMs: firstTokenAt - run.started,
						response: { content: text, ...(toolCalls.list() ? { tool_calls: toolCalls.list() } : {}) }
					});
					yield {
						done: true,
						requestId: run.requestId,
						usage: {
							prompt_tokens: usage.prompt,
							completion_tokens: usage.completion,
							total_tokens: usage.prompt + usage.completion
						},
						// What the request cost, as its log row says (a caller that records it: prompts.stream).
						cost: run.cost,
						coder: run.served
					};
				} catch (err) {
					finished = true;
					// A consumer that went away shows up here as an AbortError thrown into the generator.
					const gone = readable.destroyed;
					// An attempt aborted by its own deadline says why (its signal's reason).
					const signal = attempt.signal.aborted ? attempt.signal : run.controller.signal;
					const failure = gone
						? new UpstreamFailure("cancelled", "client disconnected")
						: classify(err, signal, run.secrets);
					if (failure.kind === "cancelled") attempt.abort(failure);
					await self.interrupted(
						run,
						{ ...served(), usage: usageOf(undefined, body.messages, text), text },
						failure.kind === "cancelled" ? "cancelled" : "error",
						failure.message
					);
					// Tokens were sent already: the client gets an error, never a clean finish.
					if (!gone)
						yield {
							error: {
								message: `stream interrupted: ${failure.message}`,
								type: "upstream_error",
								code: failure.kind
							}
						};
				} finally {
					self.inFlight.delete(run.requestId);
					if (!finished) {
						// The consumer went away: stop the upstream request and log the cancellation.
						attempt.abort(new UpstreamFailure("cancelled", "client disconnected"));
						await self
							.interrupted(
								run,
								{ ...served(), usage: usageOf(undefined, body.messages, text), text },
								"cancelled",
								"client disconnected"
							)
							.catch(() => undefined);
					}
				}
			}
			// A consumer that destroys the stream (a client gone) cancels the upstream request at once.
			const readable = ndjsonReadable(lines(), () =>
				run.controller.abort(new UpstreamFailure("cancelled", "client disconnected"))
			);
			return readable;
		}
	}
};

export default ChatMethods;
