// An Anthropic Messages API on 127.0.0.1 for tests, with the real API's edge cases: it checks x-api-key and
// anthropic-version, streams with ping events between the others, opens and closes content blocks, splits a tool's
// input JSON mid-token across input_json_delta events and events across TCP writes, reports usage in message_start
// and message_delta (cache reads included), and can fail with an error event mid-stream or a 529 overloaded.
import http from "http";
import crypto from "crypto";
import type { AddressInfo } from "net";

export interface AnthropicBehaviour {
	content?: string; // the answer's text (default: echo of the last user text)
	tool?: { name: string; input: Record<string, unknown> }; // answer with this tool call (after the text)
	status?: number; // answer with this HTTP status in Anthropic's error shape (529: overloaded_error)
	errorAfterDeltas?: number; // stream: send this many text deltas, then an error event (overloaded_error)
	cacheRead?: number; // usage.cache_read_input_tokens
	hang?: boolean; // never answer
	raw?: { status: number; contentType?: string; body?: string };
}

export interface SeenAnthropicRequest {
	path: string;
	headers: http.IncomingHttpHeaders;
	body: any;
}

const ERROR_TYPES: Record<number, string> = {
	400: "invalid_request_error",
	401: "authentication_error",
	429: "rate_limit_error",
	500: "api_error",
	529: "overloaded_error"
};

export class FakeAnthropic {
	private server = http.createServer((req, res) => this.handle(req, res));
	private behaviours = new Map<string, AnthropicBehaviour>();
	readonly requests: SeenAnthropicRequest[] = [];

	constructor(private apiKey: string) {}

	async start(): Promise<string> {
		await new Promise<void>(r => this.server.listen(0, "127.0.0.1", r));
		return this.baseUrl;
	}

	// As the Anthropic SDK takes it: without /v1.
	get baseUrl() {
		return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
	}

	set(model: string, b: AnthropicBehaviour) {
		this.behaviours.set(model, b);
	}

	last(): SeenAnthropicRequest {
		return this.requests[this.requests.length - 1];
	}

	async stop() {
		this.server.closeAllConnections();
		await new Promise(r => this.server.close(r));
	}

	private async handle(req: http.IncomingMessage, res: http.ServerResponse) {
		const chunks: Buffer[] = [];
		for await (const c of req) chunks.push(c as Buffer);
		const path = (req.url ?? "").split("?")[0];
		let body: any;
		try {
			body = JSON.parse(Buffer.concat(chunks).toString() || "{}");
		} catch {
			return this.error(res, 400, "invalid JSON");
		}
		this.requests.push({ path, headers: req.headers, body });
		if (req.method === "GET" && path === "/v1/models" && req.headers["x-api-key"] === this.apiKey) {
			const data = [...this.behaviours.keys()].map(id => ({
				type: "model",
				id,
				display_name: id,
				created_at: "2025-09-29T00:00:00Z"
			}));
			return this.json(res, 200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: null });
		}
		if (req.method !== "POST" || path !== "/v1/messages")
			return this.error(res, 404, "Not found", "not_found_error");
		if (req.headers["x-api-key"] !== this.apiKey) return this.error(res, 401, "invalid x-api-key");
		if (!req.headers["anthropic-version"]) return this.error(res, 400, "anthropic-version: header is required");
		if (!Number.isInteger(body.max_tokens)) return this.error(res, 400, "max_tokens: Field required");
		if (!Array.isArray(body.messages) || !body.messages.length)
			return this.error(res, 400, "messages: at least one message is required");
		const b = this.behaviours.get(body.model) ?? {};
		if (b.hang) return;
		if (b.raw) {
			res.writeHead(b.raw.status, b.raw.contentType ? { "Content-Type": b.raw.contentType } : {});
			return res.end(b.raw.body ?? "");
		}
		if (b.status) return this.error(res, b.status, b.status === 529 ? "Overloaded" : `fake failure ${b.status}`);
		return body.stream ? this.stream(res, body, b) : this.message(res, body, b);
	}

	private text(body: any, b: AnthropicBehaviour): string {
		if (b.content !== undefined) return b.content;
		const user = [...body.messages].reverse().find((m: any) => m.role === "user");
		const blocks =
			typeof user?.content === "string" ? [{ type: "text", text: user.content }] : (user?.content ?? []);
		const text = blocks
			.filter((x: any) => x.type === "text")
			.map((x: any) => x.text)
			.join(" ");
		return `claude(${body.model}): ${text || "…"}`;
	}

	private usage(body: any, b: AnthropicBehaviour) {
		return {
			input_tokens: Math.ceil(JSON.stringify([body.system ?? "", body.messages]).length / 4),
			cache_creation_input_tokens: 0,
			cache_read_input_tokens: b.cacheRead ?? 0
		};
	}

	private message(res: http.ServerResponse, body: any, b: AnthropicBehaviour) {
		const text = this.text(body, b);
		const content: any[] = text ? [{ type: "text", text }] : [];
		if (b.tool)
			content.push({
				type: "tool_use",
				id: `toolu_${crypto.randomUUID()}`,
				name: b.tool.name,
				input: b.tool.input
			});
		this.json(res, 200, {
			id: `msg_${crypto.randomUUID()}`,
			type: "message",
			role: "assistant",
			model: body.model,
			content,
			stop_reason: b.tool ? "tool_use" : "end_turn",
			stop_sequence: null,
			usage: { ...this.usage(body, b), output_tokens: Math.ceil(text.length / 4) + (b.tool ? 10 : 0) }
		});
	}

	private async stream(res: http.ServerResponse, body: any, b: AnthropicBehaviour) {
		res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
		const event = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
		// Each event split in two TCP writes, as a proxy's buffering may cut them.
		const send = async (text: string) => {
			const half = Math.floor(text.length / 2);
			res.write(text.slice(0, half));
			await tick();
			res.write(text.slice(half));
			await tick();
		};
		const text = this.text(body, b);
		const usage = this.usage(body, b);
		await send(
			event("message_start", {
				message: {
					id: `msg_${crypto.randomUUID()}`,
					type: "message",
					role: "assistant",
					model: body.model,
					content: [],
					stop_reason: null,
					stop_sequence: null,
					usage: { ...usage, output_tokens: 1 }
				}
			})
		);
		await send(event("ping", {}));
		let index = 0;
		if (text) {
			await send(event("content_block_start", { index, content_block: { type: "text", text: "" } }));
			const words = text.split(/(?<= )/);
			for (let i = 0; i < words.length; i++) {
				if (b.errorAfterDeltas !== undefined && i >= b.errorAfterDeltas) {
					await send(event("error", { error: { type: "overloaded_error", message: "Overloaded" } }));
					return res.end();
				}
				await send(event("content_block_delta", { index, delta: { type: "text_delta", text: words[i] } }));
				if (i === 0) await send(event("ping", {}));
			}
			await send(event("content_block_stop", { index }));
			index++;
		}
		if (b.tool) {
			const id = `toolu_${crypto.randomUUID()}`;
			await send(
				event("content_block_start", {
					index,
					content_block: { type: "tool_use", id, name: b.tool.name, input: {} }
				})
			);
			// The input's JSON in pieces of 5 characters: cut inside keys, strings and numbers, as the real API does.
			const json = JSON.stringify(b.tool.input);
			await send(event("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: "" } }));
			for (let i = 0; i < json.length; i += 5)
				await send(
					event("content_block_delta", {
						index,
						delta: { type: "input_json_delta", partial_json: json.slice(i, i + 5) }
					})
				);
			await send(event("content_block_stop", { index }));
		}
		await send(
			event("message_delta", {
				delta: { stop_reason: b.tool ? "tool_use" : "end_turn", stop_sequence: null },
				usage: { output_tokens: Math.ceil(text.length / 4) + (b.tool ? 10 : 0) }
			})
		);
		await send(event("message_stop", {}));
		res.end();
	}

	private error(
		res: http.ServerResponse,
		status: number,
		message: string,
		type = ERROR_TYPES[status] ?? "api_error"
	) {
		this.json(res, status, { type: "error", error: { type, message }, request_id: `req_${crypto.randomUUID()}` });
	}

	private json(res: http.ServerResponse, status: number, body: unknown) {
		res.writeHead(status, { "Content-Type": "application/json", "request-id": `req_${crypto.randomUUID()}` });
		res.end(JSON.stringify(body));
	}
}

const tick = () => new Promise(r => setImmediate(r));
