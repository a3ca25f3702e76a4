// Anthropic's Messages API served inbound (/v1/messages, messages.route.ts): a Messages request becomes the
// platform's chat request, and its completion or chunks become a message or Anthropic's event sequence. The outbound
// direction (an Anthropic provider) is in anthropic.ts. Pure code over parsed JSON.
import { isObject, type Json } from "./json";
import { anthropicUsage, stopOf, Untranslatable } from "./anthropic";

// ---- inbound: Messages request → the platform's chat request -------------------------------------------------

// The text of `blocks`, skipping blocks of the `skip` types; any other kind is refused naming its place.
function inboundText(blocks: Json[], field: string, skip: string[] = []): string {
	return blocks
		.flatMap((b, i) => {
			if (b.type === "text") return [String(b.text ?? "")];
			if (skip.includes(b.type)) return [];
			throw new Untranslatable(`${field}[${i}].type`, `${JSON.stringify(b.type)} is not supported here`);
		})
		.join("\n");
}

const blocksOf = (content: unknown, field: string): Json[] => {
	if (typeof content === "string") return [{ type: "text", text: content }];
	if (!Array.isArray(content) || !content.every(isObject))
		throw new Untranslatable(field, "must be a string or a list of content blocks");
	return content;
};

function userParts(blocks: Json[], field: string): Json[] {
	return blocks.map((b, i) => {
		if (b.type === "text") return { type: "text", text: String(b.text ?? "") };
		if (b.type === "image" && b.source?.type === "base64")
			return { type: "image_url", image_url: { url: `data:${b.source.media_type};base64,${b.source.data}` } };
		if (b.type === "image" && b.source?.type === "url")
			return { type: "image_url", image_url: { url: b.source.url } };
		throw new Untranslatable(`${field}[${i}].type`, `${JSON.stringify(b.type)} is not supported`);
	});
}

export function fromMessagesRequest(body: unknown): { params: Json; stream: boolean } {
	if (!isObject(body)) throw new Untranslatable("body", "must be a JSON object");
	if (typeof body.model !== "string" || !body.model) throw new Untranslatable("model", "is required");
	if (!Number.isInteger(body.max_tokens) || body.max_tokens < 1)
		throw new Untranslatable("max_tokens", "is required (a positive whole number)");
	if (!Array.isArray(body.messages) || !body.messages.length)
		throw new Untranslatable("messages", "must be a non-empty list");
	const messages: Json[] = [];
	if (body.system !== undefined) {
		const text = inboundText(blocksOf(body.system, "system"), "system");
		if (text) messages.push({ role: "system", content: text });
	}
	body.messages.forEach((m: unknown, i: number) => {
		const at = `messages[${i}]`;
		if (!isObject(m) || (m.role !== "user" && m.role !== "assistant"))
			throw new Untranslatable(`${at}.role`, "must be user or assistant");
		const blocks = blocksOf(m.content, `${at}.content`);
		if (m.role === "assistant") {
			const text = blocks
				.filter(b => b.type === "text")
				.map(b => String(b.text ?? ""))
				.join("");
			const calls = blocks
				.filter(b => b.type === "tool_use")
				.map(b => ({
					id: String(b.id),
					type: "function",
					function: { name: String(b.name), arguments: JSON.stringify(b.input ?? {}) }
				}));
			const other = blocks.findIndex(
				b => !["text", "tool_use", "thinking", "redacted_thinking"].includes(b.type)
			);
			if (other >= 0) throw new Untranslatable(`${at}.content[${other}].type`, "is not supported");
			messages.push({ role: "assistant", content: text || null, ...(calls.length ? { tool_calls: calls } : {}) });
			return;
		}
		// Tool results answer the previous assistant turn, so in OpenAI's terms they come first, one message each.
		// OpenAI's tool messages carry text only: a result's images (a screenshot tool's) follow in the user's turn.
		const rest: Json[] = [];
		const images: Json[] = [];
		blocks.forEach((b, j) => {
			if (b.type !== "tool_result") return void rest.push(b);
			const field = `${at}.content[${j}].content`;
			const parts = b.content === undefined ? [] : blocksOf(b.content, field);
			images.push(...parts.filter(p => p.type === "image"));
			const content = inboundText(parts, field, ["image"]);
			messages.push({
				role: "tool",
				tool_call_id: String(b.tool_use_id),
				content: b.is_error ? `Error: ${content}` : content
			});
		});
		rest.push(...images);
		if (!rest.length) return;
		const parts = userParts(rest, `${at}.content`);
		const textOnly = parts.every(p => p.type === "text");
		messages.push({ role: "user", content: textOnly ? parts.map(p => p.text).join("\n") : parts });
	});
	const params: Json = { model: body.model, messages, max_tokens: body.max_tokens };
	if (body.temperature !== undefined) params.temperature = body.temperature;
	if (body.top_p !== undefined) params.top_p = body.top_p;
	if (Array.isArray(body.stop_sequences) && body.stop_sequences.length) params.stop = body.stop_sequences;
	if (Array.isArray(body.tools) && body.tools.length)
		params.tools = body.tools.map((t: unknown, i: number) => {
			if (!isObject(t) || typeof t.name !== "string" || (t.type !== undefined && t.type !== "custom"))
				throw new Untranslatable(`tools[${i}]`, "only custom tools (name, input_schema) are supported");
			const fn: Json = { name: t.name, parameters: t.input_schema ?? { type: "object", properties: {} } };
			if (t.description) fn.description = t.description;
			return { type: "function", function: fn };
		});
	const choice = body.tool_choice;
	if (isObject(choice)) {
		const byType: Record<string, unknown> = { auto: "auto", any: "required", none: "none" };
		if (choice.type === "tool") params.tool_choice = { type: "function", function: { name: String(choice.name) } };
		else if (choice.type in byType) params.tool_choice = byType[choice.type];
		else throw new Untranslatable("tool_choice.type", "must be auto, any, tool or none");
	}
	// An end-user tag only: one longer than the platform keeps is left out rather than failing the request.
	const user = body.metadata?.user_id;
	if (typeof user === "string" && user.length <= 200) params.user = user;
	return { params, stream: body.stream === true };
}

// ---- inbound: chat completion (or its chunks) → message (or its events) --------------------------------------

const messageId = (id: unknown) => {
	const s = typeof id === "string" && id ? id : `${Date.now()}`;
	return s.startsWith("msg_") ? s : `msg_${s.replace(/^chatcmpl-/, "")}`;
};

function parseInput(args: unknown): Json {
	try {
		const v = typeof args === "string" && args ? JSON.parse(args) : {};
		return isObject(v) ? v : { value: v };
	} catch {
		return {};
	}
}

export function toMessage(completion: Json, model: string): Json {
	const choice = completion.choices?.[0] ?? {};
	const m = choice.message ?? {};
	const content: Json[] = [];
	if (typeof m.content === "string" && m.content) content.push({ type: "text", text: m.content });
	for (const c of m.tool_calls ?? [])
		content.push({ type: "tool_use", id: c.id, name: c.function?.name, input: parseInput(c.function?.arguments) });
	return {
		id: messageId(completion.id),
		type: "message",
		role: "assistant",
		model,
		content,
		stop_reason: stopOf(choice.finish_reason) ?? "end_turn",
		stop_sequence: null,
		usage: anthropicUsage(completion.usage)
	};
}

export type SseEvent = { event: string; data: Json };

// The platform's stream lines (OpenAI chunks, then {done, usage} or {error}) as Anthropic's events: message_start,
// a content block per text run or tool call (started, deltas, stopped), message_delta with the stop reason and
// usage, message_stop. Block indexes count up from 0, as the SDK's accumulator expects.
export class EventsOfChunks {
	private index = -1;
	private open: "text" | "tool" | undefined;
	private openTool: number | undefined; // the OpenAI tool call index of the open tool block
	// Tool calls that started while another one's block was open, by OpenAI index: they go out whole at the end.
	private waiting = new Map<number, { id: string; name: string; args: string }>();
	private stop: string | null = null;

	// `inputEstimate`: message_start's input_tokens, before the provider has counted (message_delta says the count).
	constructor(
		private id: string,
		private model: string,
		private inputEstimate = 0
	) {}

	start(): SseEvent[] {
		const message = {
			id: messageId(this.id),
			type: "message",
			role: "assistant",
			model: this.model,
			content: [],
			stop_reason: null,
			stop_sequence: null,
			usage: { input_tokens: this.inputEstimate, output_tokens: 0 }
		};
		return [
			{ event: "message_start", data: { type: "message_start", message } },
			{ event: "ping", data: { type: "ping" } }
		];
	}

	private close(): SseEvent[] {
		if (!this.open) return [];
		this.open = undefined;
		this.openTool = undefined;
		return [{ event: "content_block_stop", data: { type: "content_block_stop", index: this.index } }];
	}

	private begin(block: Json): SseEvent[] {
		const events = this.close();
		this.index++;
		events.push({
			event: "content_block_start",
			data: { type: "content_block_start", index: this.index, content_block: block }
		});
		return events;
	}

	private flushWaiting(): SseEvent[] {
		const events: SseEvent[] = [];
		for (const [, t] of [...this.waiting].sort(([a], [b]) => a - b)) {
			events.push(...this.begin({ type: "tool_use", id: t.id, name: t.name, input: {} }));
			if (t.args) events.push(this.delta({ type: "input_json_delta", partial_json: t.args }));
			this.open = "tool";
			events.push(...this.close());
		}
		this.waiting.clear();
		return events;
	}

	private delta(delta: Json): SseEvent {
		return { event: "content_block_delta", data: { type: "content_block_delta", index: this.index, delta } };
	}

	next(line: Json): SseEvent[] {
		if (line.error) {
			const kind = String(line.error.code ?? "");
			const type =
				kind === "rate_limit" ? "rate_limit_error" : /timeout/.test(kind) ? "timeout_error" : "api_error";
			const error = { type, message: String(line.error.message ?? "stream interrupted") };
			return [{ event: "error", data: { type: "error", error } }];
		}
		if (line.done) {
			const usage = anthropicUsage(line.usage);
			return [
				...this.close(),
				...this.flushWaiting(),
				{
					event: "message_delta",
					data: {
						type: "message_delta",
						delta: { stop_reason: this.stop ?? "end_turn", stop_sequence: null },
						usage
					}
				},
				{ event: "message_stop", data: { type: "message_stop" } }
			];
		}
		const events: SseEvent[] = [];
		for (const c of line.choices ?? []) {
			if (c.index !== undefined && c.index !== 0) continue;
			const d = c.delta ?? {};
			if (typeof d.content === "string" && d.content) {
				if (this.open !== "text") {
					events.push(...this.begin({ type: "text", text: "" }));
					this.open = "text";
				}
				events.push(this.delta({ type: "text_delta", text: d.content }));
			}
			for (const t of d.tool_calls ?? []) {
				const n = t.index ?? 0;
				const args: string = t.function?.arguments ?? "";
				// Parallel calls may arrive interleaved (pieces of 0, 1, 0, 1), and an Anthropic block cannot be
				// reopened once another has started: the first call streams as it comes, and any call that starts while
				// it is open waits and goes out whole at the end.
				const waiting = this.waiting.get(n);
				if (waiting) {
					waiting.args += args;
					continue;
				}
				if (this.open === "tool" && this.openTool !== n) {
					const id = t.id ?? `toolu_${this.id}_${n}`;
					this.waiting.set(n, { id, name: t.function?.name ?? "", args });
					continue;
				}
				if (this.open !== "tool") {
					const block = {
						type: "tool_use",
						id: t.id ?? `toolu_${this.id}_${n}`,
						name: t.function?.name ?? "",
						input: {}
					};
					events.push(...this.begin(block));
					this.open = "tool";
					this.openTool = n;
				}
				if (args) events.push(this.delta({ type: "input_json_delta", partial_json: args }));
			}
			if (c.finish_reason) this.stop = stopOf(c.finish_reason);
		}
		return events;
	}
}
