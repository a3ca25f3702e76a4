// An OpenAI-compatible upstream on 127.0.0.1 for tests: chat completions (plain and SSE), embeddings, models, and
// the Responses API. Per upstream model it can answer, wait, fail with a status, hang, delay the first token, or cut a
// stream. Its streams have the edge cases real providers have: keep-alive comment lines, finish_reason on a chunk of
// its own, a usage-only final chunk, tool-call arguments split mid-JSON, `n` choices interleaved; optionally an
// opening chunk with no choices (Azure), no `role` on the first delta, embeddings in a format nobody asked for.
import http from "http";
import crypto from "crypto";
import type { AddressInfo } from "net";

// The smallest whole chat completion, for raw servers that answer one fixed body.
export const CHAT_COMPLETION = {
	id: "c1",
	object: "chat.completion",
	created: 1,
	model: "m",
	choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }]
};

export interface Behaviour {
	status?: number; // answer with this HTTP error status
	delayMs?: number; // wait before answering (or before the first chunk)
	hang?: boolean; // never answer
	cutAfterChunks?: number; // stream: send this many chunks, then destroy the socket
	chunkDelayMs?: number;
	noUsage?: boolean; // leave usage out, so the platform must count tokens itself
	content?: string;
	// Answer exactly this (an HTML page, plain text, a redirect, JSON of another API) instead of OpenAI's shapes.
	raw?: { status: number; contentType?: string; body?: string; headers?: Record<string, string> };
	// Refuse with `status` (default 401) in OpenAI's error shape, quoting the credentials received, as many do.
	echoCredentials?: boolean;
	// Embeddings always in this format, whatever `encoding_format` asked (many OpenAI-compatible servers ignore it).
	embeddingFormat?: "float" | "base64";
	// Stream: open with a chunk whose `choices` is empty (Azure's prompt-filter chunk).
	emptyChoicesChunk?: boolean;
	// Stream: no `role` on the first delta (some OpenAI-compatible servers).
	noRole?: boolean;
	// No /v1/responses (most OpenAI-compatible servers): 404 as such servers answer.
	noResponsesApi?: boolean;
	// Answer with a call of this tool, whatever tools were offered (streamed: its arguments in pieces).
	toolCall?: { name: string; arguments: string };
	// Awaited before answering: the test lets the platform catch up (an event counted) before the next answer.
	before?: () => Promise<unknown>;
}

export interface SeenRequest {
	path: string;
	model?: string;
	authorization?: string;
	headers: http.IncomingHttpHeaders;
	body: any;
	aborted: boolean;
	finished: boolean;
}

export class FakeOpenAI {
	private server = http.createServer((req, res) => this.handle(req, res));
	private behaviours = new Map<string, Behaviour>();
	readonly requests: SeenRequest[] = [];
	// When set, a request without this bearer key is refused (401, OpenAI's shape), as real providers do.
	requiredKey?: string;
	// Model ids GET /v1/models lists besides the configured behaviours', with a context length.
	listed: { id: string; context_length?: number }[] = [];
	private sockets = new Set<import("net").Socket>();

	async start(): Promise<string> {
		this.server.on("connection", s => {
			this.sockets.add(s);
			s.on("close", () => this.sockets.delete(s));
		});
		await new Promise<void>(r => this.server.listen(0, "127.0.0.1", r));
		return this.baseUrl;
	}

	get baseUrl() {
		return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
	}

	set(model: string, b: Behaviour) {
		this.behaviours.set(model, b);
	}

	reset() {
		this.behaviours.clear();
		this.requiredKey = undefined;
		this.listed = [];
		this.requests.length = 0;
	}

	count(model?: string, path = "/v1/chat/completions") {
		return this.requests.filter(r => r.path === path && (!model || r.model === model)).length;
	}

	async stop() {
		for (const s of this.sockets) s.destroy();
		await new Promise(r => this.server.close(r));
	}

	private async handle(req: http.IncomingMessage, res: http.ServerResponse) {
		const chunks: Buffer[] = [];
		for await (const c of req) chunks.push(c as Buffer);
		let body: any = {};
		try {
			body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {};
		} catch {
			return this.json(res, 400, { error: { message: "bad json", type: "invalid_request_error" } });
		}
		const path = (req.url ?? "").split("?")[0];
		const seen: SeenRequest = {
			path,
			model: body.model,
			authorization: req.headers.authorization,
			headers: req.headers,
			body,
			aborted: false,
			finished: false
		};
		this.requests.push(seen);
		res.on("close", () => {
			if (!res.writableFinished) seen.aborted = true;
		});
		res.on("finish", () => (seen.finished = true));

		if (this.requiredKey && req.headers.authorization !== `Bearer ${this.requiredKey}`)
			return this.json(res, 401, {
				error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" }
			});
		if (path === "/v1/models")
			return this.json(res, 200, {
				object: "list",
				data: [
					...[...this.behaviours.keys()].map(id => ({ id, object: "model", created: 0, owned_by: "fake" })),
					...this.listed.map(m => ({ ...m, object: "model", created: 0, owned_by: "fake" }))
				]
			});
		const b = this.behaviours.get(body.model) ?? {};
		if (b.hang) return;
		await b.before?.();
		if (b.delayMs && !body.stream) await sleep(b.delayMs);
		if (b.raw) {
			res.writeHead(b.raw.status, {
				...(b.raw.contentType ? { "Content-Type": b.raw.contentType } : {}),
				...b.raw.headers
			});
			return res.end(b.raw.body ?? "");
		}
		if (b.echoCredentials) {
			const sent = Object.entries(req.headers)
				.filter(([k]) => /authorization|key|token/i.test(k))
				.map(([k, v]) => `${k}=${v}`);
			return this.json(res, b.status ?? 401, {
				error: {
					message: `Incorrect API key provided: ${sent.join(", ")}`,
					type: "invalid_request_error",
					code: "invalid_api_key"
				}
			});
		}
		if (b.status)
			return this.json(res, b.status, {
				error: {
					message: `fake upstream failure ${b.status}`,
					type: b.status === 429 ? "rate_limit_error" : "server_error"
				}
			});
		if (path === "/v1/embeddings") return this.embeddings(res, body, b);
		if (path === "/v1/chat/completions")
			return body.stream ? this.stream(res, body, b) : this.complete(res, body, b);
		if (path === "/v1/responses" && !b.noResponsesApi)
			return body.stream ? this.streamResponse(res, body, b) : this.json(res, 200, this.response(body, b));
		this.json(res, 404, { error: { message: "no such route", type: "invalid_request_error", code: null } });
	}

	private lastUserText(body: any) {
		const last = [...(body.messages ?? [])].reverse().find((m: any) => m.role === "user");
		return typeof last?.content === "string" ? last.content : "…";
	}

	// What choice `index` answers: a call of the first tool (when tools are offered and no tool result came back
	// yet), JSON following the response_format's schema, or text.
	private choice(body: any, b: Behaviour, index: number): Choice {
		const id = `call_${crypto.randomUUID().slice(0, 8)}`;
		if (b.toolCall) return { toolCall: { id, ...b.toolCall } };
		const lastRole = body.messages?.at(-1)?.role;
		if (body.tools?.length && lastRole !== "tool" && body.tool_choice !== "none") {
			const name = body.tools[0].function?.name ?? "tool";
			const args = JSON.stringify({ query: this.lastUserText(body), index });
			return { toolCall: { id, name, arguments: args } };
		}
		const format = body.response_format;
		if (format?.type === "json_schema") return { content: JSON.stringify(sample(format.json_schema?.schema)) };
		if (format?.type === "json_object") return { content: JSON.stringify({ answer: this.lastUserText(body) }) };
		const text = b.content ?? `echo(${body.model}): ${this.lastUserText(body)}`;
		return { content: index ? `(${index}) ${text}` : text };
	}

	private choices(body: any, b: Behaviour): Choice[] {
		return Array.from({ length: body.n ?? 1 }, (_, i) => this.choice(body, b, i));
	}

	private usage(body: any, choices: Choice[]) {
		const prompt = Math.ceil(JSON.stringify(body.messages ?? body.input ?? []).length / 4);
		const out = choices.reduce((n, c) => n + (c.content ?? c.toolCall?.arguments ?? "").length, 0);
		const completion = Math.ceil(out / 4);
		return {
			prompt_tokens: prompt,
			completion_tokens: completion,
			total_tokens: prompt + completion,
			prompt_tokens_details: { cached_tokens: 0 }
		};
	}

	private logprobs(body: any, text: string) {
		if (!body.logprobs) return null;
		const entry = (token: string) => ({ token, logprob: -0.25, bytes: [...Buffer.from(token)], top_logprobs: [] });
		const top = (token: string) =>
			Array.from({ length: body.top_logprobs ?? 0 }, (_, i) => ({
				...entry(i ? `${token}~${i}` : token),
				logprob: -0.25 * (i + 1)
			}));
		return {
			content: text
				.split(/(?<= )/)
				.filter(Boolean)
				.map(t => ({ ...entry(t), top_logprobs: top(t) })),
			refusal: null
		};
	}

	private complete(res: http.ServerResponse, body: any, b: Behaviour) {
		const choices = this.choices(body, b);
		this.json(res, 200, {
			id: `chatcmpl-${crypto.randomUUID()}`,
			object: "chat.completion",
			created: Math.floor(Date.now() / 1000),
			model: body.model,
			choices: choices.map((c, index) => ({
				index,
				message: c.toolCall
					? {
							role: "assistant",
							content: null,
							tool_calls: [
								{
									id: c.toolCall.id,
									type: "function",
									function: { name: c.toolCall.name, arguments: c.toolCall.arguments }
								}
							]
						}
					: { role: "assistant", content: c.content, refusal: null },
				logprobs: this.logprobs(body, c.content ?? ""),
				finish_reason: c.toolCall ? "tool_calls" : "stop"
			})),
			...(b.noUsage ? {} : { usage: this.usage(body, choices) })
		});
	}

	private async stream(res: http.ServerResponse, body: any, b: Behaviour) {
		res.writeHead(200, {
			"Content-Type": "text/event-stream",
			"Cache-Control": "no-cache",
			Connection: "keep-alive"
		});
		res.flushHeaders();
		// Comment lines keep proxies from timing the connection out; every SSE client must skip them.
		res.write(": keep-alive\n\n");
		if (b.delayMs) await sleep(b.delayMs);
		const choices = this.choices(body, b);
		const id = `chatcmpl-${crypto.randomUUID()}`;
		const created = Math.floor(Date.now() / 1000);
		const send = (choices: any[], extra: any = {}) =>
			res.write(
				`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices, ...extra })}\n\n`
			);
		if (b.emptyChoicesChunk) send([], { prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] });
		// Text in words; tool-call arguments in pieces of 7 characters, cut anywhere in the JSON.
		const pieces = choices.map(c =>
			c.toolCall ? c.toolCall.arguments.match(/[\s\S]{1,7}/g)! : c.content!.split(/(?<= )/)
		);
		// As OpenAI does: a first chunk per choice with the role and empty content (unless the upstream sends none).
		if (!b.noRole)
			choices.forEach((c, index) =>
				send([
					{
						index,
						delta: { role: "assistant", content: c.toolCall ? null : "" },
						logprobs: body.logprobs ? { content: [], refusal: null } : null,
						finish_reason: null
					}
				])
			);
		const steps = Math.max(...pieces.map(p => p.length));
		for (let i = 0; i < steps; i++) {
			if (res.destroyed) return;
			if (b.cutAfterChunks !== undefined && i >= b.cutAfterChunks) {
				res.socket?.destroy();
				return;
			}
			choices.forEach((c, index) => {
				const piece = pieces[index][i];
				if (piece === undefined) return;
				const delta = c.toolCall
					? {
							...(i === 0 ? { content: null } : {}),
							tool_calls: [
								i === 0
									? {
											index: 0,
											id: c.toolCall.id,
											type: "function",
											function: { name: c.toolCall.name, arguments: piece }
										}
									: { index: 0, function: { arguments: piece } }
							]
						}
					: { content: piece };
				send([{ index, delta, logprobs: c.toolCall ? null : this.logprobs(body, piece), finish_reason: null }]);
			});
			if (i === 1) res.write(": keep-alive\n\n");
			if (b.chunkDelayMs) await sleep(b.chunkDelayMs);
		}
		// finish_reason on a chunk of its own, with an empty delta, as OpenAI sends it.
		choices.forEach((c, index) => send([{ index, delta: {}, finish_reason: c.toolCall ? "tool_calls" : "stop" }]));
		if (body.stream_options?.include_usage && !b.noUsage) send([], { usage: this.usage(body, choices) });
		res.end("data: [DONE]\n\n");
	}

	// The Responses API, its text answer only: enough for clients that speak it, relayed as-is by the platform.
	private response(body: any, b: Behaviour, status = "completed") {
		const input = typeof body.input === "string" ? body.input : JSON.stringify(body.input ?? "");
		const text = b.content ?? `echo(${body.model}): ${input}`;
		const inputTokens = Math.ceil(input.length / 4);
		const outputTokens = Math.ceil(text.length / 4);
		return {
			id: `resp_${crypto.randomUUID().replace(/-/g, "")}`,
			object: "response",
			created_at: Math.floor(Date.now() / 1000),
			status,
			model: body.model,
			output: [
				{
					type: "message",
					id: "msg_1",
					status: "completed",
					role: "assistant",
					content: [{ type: "output_text", text, annotations: [] }]
				}
			],
			usage: {
				input_tokens: inputTokens,
				output_tokens: outputTokens,
				total_tokens: inputTokens + outputTokens,
				input_tokens_details: { cached_tokens: 0 },
				output_tokens_details: { reasoning_tokens: 0 }
			}
		};
	}

	private async streamResponse(res: http.ServerResponse, body: any, b: Behaviour) {
		res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
		if (b.delayMs) await sleep(b.delayMs);
		const final = this.response(body, b);
		const text = final.output[0].content[0].text;
		let seq = 0;
		const event = (type: string, data: any) =>
			res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`);
		const item = { output_index: 0, item_id: "msg_1" };
		event("response.created", { response: { ...final, status: "in_progress", output: [], usage: null } });
		event("response.output_item.added", {
			output_index: 0,
			item: { ...final.output[0], status: "in_progress", content: [] }
		});
		event("response.content_part.added", {
			...item,
			content_index: 0,
			part: { type: "output_text", text: "", annotations: [] }
		});
		const words = text.split(/(?<= )/);
		for (let i = 0; i < words.length; i++) {
			if (b.cutAfterChunks !== undefined && i >= b.cutAfterChunks) return res.socket?.destroy();
			event("response.output_text.delta", { ...item, content_index: 0, delta: words[i] });
			if (b.chunkDelayMs) await sleep(b.chunkDelayMs);
		}
		event("response.output_text.done", { ...item, content_index: 0, text });
		event("response.content_part.done", { ...item, content_index: 0, part: final.output[0].content[0] });
		event("response.output_item.done", { output_index: 0, item: final.output[0] });
		event("response.completed", { response: final });
		res.end();
	}

	private embeddings(res: http.ServerResponse, body: any, b: Behaviour) {
		const inputs: string[] = Array.isArray(body.input) ? body.input : [body.input];
		const dims = body.dimensions ?? 8;
		const format = b.embeddingFormat ?? body.encoding_format ?? "float";
		const data = inputs.map((text, index) => {
			const embedding = FakeOpenAI.vector(String(text), dims);
			// As OpenAI does: base64 of little-endian float32 when asked (the official SDK asks by default).
			const encoded =
				format === "base64" ? Buffer.from(new Float32Array(embedding).buffer).toString("base64") : embedding;
			return { object: "embedding", index, embedding: encoded };
		});
		const tokens = inputs.reduce((n, t) => n + Math.ceil(String(t).length / 4), 0);
		this.json(res, 200, {
			object: "list",
			data,
			model: body.model,
			usage: { prompt_tokens: tokens, total_tokens: tokens }
		});
	}

	// The embedding this upstream gives `text` (float32 precision), for tests to compare with what clients get.
	static vector(text: string, dims = 8): number[] {
		const h = crypto.createHash("sha256").update(text).digest();
		return Array.from(new Float32Array(Array.from({ length: dims }, (_, i) => h[i % h.length] / 255)));
	}

	private json(res: http.ServerResponse, status: number, body: unknown) {
		res.writeHead(status, { "Content-Type": "application/json" });
		res.end(JSON.stringify(body));
	}
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

interface Choice {
	content?: string;
	toolCall?: { id: string; name: string; arguments: string };
}

// A value that fits a JSON schema (the subset structured outputs use), for json_schema response formats.
function sample(schema: any): unknown {
	if (!schema || typeof schema !== "object") return null;
	if (schema.enum) return schema.enum[0];
	const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
	if (type === "object" || schema.properties)
		return Object.fromEntries(Object.entries<any>(schema.properties ?? {}).map(([k, v]) => [k, sample(v)]));
	if (type === "array") return [sample(schema.items)];
	if (type === "string") return "sample";
	if (type === "integer" || type === "number") return 1;
	if (type === "boolean") return true;
	return null;
}
