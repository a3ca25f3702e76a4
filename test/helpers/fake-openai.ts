// An OpenAI-compatible upstream on 127.0.0.1 for tests: chat completions (plain and SSE), embeddings, models.
// Per upstream model it can answer, wait, fail with a status, hang, delay the first token, or cut a stream.
import http from "http";
import crypto from "crypto";
import type { AddressInfo } from "net";

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
	// Answer with a call of this tool (streamed: its arguments in pieces of 4 characters).
	toolCall?: { name: string; arguments: string };
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

		if (path === "/v1/models")
			return this.json(res, 200, {
				object: "list",
				data: [...this.behaviours.keys()].map(id => ({ id, object: "model", created: 0, owned_by: "fake" }))
			});
		const b = this.behaviours.get(body.model) ?? {};
		if (b.hang) return;
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
		if (path === "/v1/embeddings") return this.embeddings(res, body);
		if (path === "/v1/chat/completions" && b.toolCall)
			return body.stream
				? this.streamToolCall(res, body, b.toolCall)
				: this.completeToolCall(res, body, b.toolCall);
		if (path === "/v1/chat/completions")
			return body.stream ? this.stream(res, body, b) : this.complete(res, body, b);
		this.json(res, 404, { error: { message: "no such route" } });
	}

	private answer(body: any, b: Behaviour) {
		const last = [...(body.messages ?? [])].reverse().find((m: any) => m.role === "user");
		return b.content ?? `echo(${body.model}): ${typeof last?.content === "string" ? last.content : "…"}`;
	}

	private usage(body: any, content: string) {
		const prompt = Math.ceil(JSON.stringify(body.messages ?? []).length / 4);
		const completion = Math.ceil(content.length / 4);
		return {
			prompt_tokens: prompt,
			completion_tokens: completion,
			total_tokens: prompt + completion,
			prompt_tokens_details: { cached_tokens: 0 }
		};
	}

	private complete(res: http.ServerResponse, body: any, b: Behaviour) {
		const content = this.answer(body, b);
		this.json(res, 200, {
			id: `chatcmpl-${crypto.randomUUID()}`,
			object: "chat.completion",
			created: Math.floor(Date.now() / 1000),
			model: body.model,
			choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
			...(b.noUsage ? {} : { usage: this.usage(body, content) })
		});
	}

	private async stream(res: http.ServerResponse, body: any, b: Behaviour) {
		res.writeHead(200, {
			"Content-Type": "text/event-stream",
			"Cache-Control": "no-cache",
			Connection: "keep-alive"
		});
		res.flushHeaders();
		if (b.delayMs) await sleep(b.delayMs);
		const content = this.answer(body, b);
		const words = content.split(/(?<= )/);
		const id = `chatcmpl-${crypto.randomUUID()}`;
		const chunk = (delta: any, finish: string | null, extra: any = {}) =>
			`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model: body.model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
		for (let i = 0; i < words.length; i++) {
			if (res.destroyed) return;
			if (b.cutAfterChunks !== undefined && i >= b.cutAfterChunks) {
				res.socket?.destroy();
				return;
			}
			res.write(chunk(i === 0 ? { role: "assistant", content: words[i] } : { content: words[i] }, null));
			if (b.chunkDelayMs) await sleep(b.chunkDelayMs);
		}
		res.write(chunk({}, "stop"));
		if (body.stream_options?.include_usage && !b.noUsage)
			res.write(
				`data: ${JSON.stringify({ id, object: "chat.completion.chunk", model: body.model, choices: [], usage: this.usage(body, content) })}\n\n`
			);
		res.end("data: [DONE]\n\n");
	}

	private completeToolCall(res: http.ServerResponse, body: any, call: { name: string; arguments: string }) {
		const tool_calls = [{ id: `call_${crypto.randomUUID()}`, type: "function", function: call }];
		this.json(res, 200, {
			id: `chatcmpl-${crypto.randomUUID()}`,
			object: "chat.completion",
			created: Math.floor(Date.now() / 1000),
			model: body.model,
			choices: [
				{ index: 0, message: { role: "assistant", content: null, tool_calls }, finish_reason: "tool_calls" }
			],
			usage: this.usage(body, call.arguments)
		});
	}

	private streamToolCall(res: http.ServerResponse, body: any, call: { name: string; arguments: string }) {
		res.writeHead(200, { "Content-Type": "text/event-stream" });
		const id = `chatcmpl-${crypto.randomUUID()}`;
		const chunk = (delta: any, finish: string | null) =>
			`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
		const first = {
			index: 0,
			id: `call_${crypto.randomUUID()}`,
			type: "function",
			function: { name: call.name, arguments: "" }
		};
		res.write(chunk({ role: "assistant", content: null, tool_calls: [first] }, null));
		for (let i = 0; i < call.arguments.length; i += 4)
			res.write(
				chunk({ tool_calls: [{ index: 0, function: { arguments: call.arguments.slice(i, i + 4) } }] }, null)
			);
		res.write(chunk({}, "tool_calls"));
		if (body.stream_options?.include_usage)
			res.write(
				`data: ${JSON.stringify({ id, object: "chat.completion.chunk", model: body.model, choices: [], usage: this.usage(body, call.arguments) })}\n\n`
			);
		res.end("data: [DONE]\n\n");
	}

	private embeddings(res: http.ServerResponse, body: any) {
		const inputs: string[] = Array.isArray(body.input) ? body.input : [body.input];
		const dims = body.dimensions ?? 8;
		const data = inputs.map((text, index) => {
			const h = crypto.createHash("sha256").update(String(text)).digest();
			const vector = Array.from({ length: dims }, (_, i) => h[i % h.length] / 255);
			// As OpenAI does: base64 of little-endian float32 when asked (the official SDK asks by default).
			const embedding =
				body.encoding_format === "base64"
					? Buffer.from(new Float32Array(vector).buffer).toString("base64")
					: vector;
			return { object: "embedding", index, embedding };
		});
		const tokens = inputs.reduce((n, t) => n + Math.ceil(String(t).length / 4), 0);
		this.json(res, 200, {
			object: "list",
			data,
			model: body.model,
			usage: { prompt_tokens: tokens, total_tokens: tokens }
		});
	}

	private json(res: http.ServerResponse, status: number, body: unknown) {
		res.writeHead(status, { "Content-Type": "application/json" });
		res.end(JSON.stringify(body));
	}
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));
