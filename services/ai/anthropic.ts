// Anthropic's Messages API and OpenAI's chat completions, each in the other's terms. Outbound (an Anthropic
// provider): the platform's OpenAI-shaped request becomes a Messages request, and the message or its event stream
// becomes a chat completion or its chunks. Inbound (/v1/messages): a Messages request becomes the platform's chat
// request, and its completion or chunks become a message or Anthropic's event sequence. Pure code over parsed JSON.
import { isObject, type Json } from "./json";

export const ANTHROPIC_VERSION = "2023-06-01";
// Anthropic requires an output cap; OpenAI clients often send none.
export const DEFAULT_MAX_TOKENS = 4096;
// A response_format is asked of Anthropic as a forced call of a tool of that shape: the call's input is the answer.
export const JSON_TOOL = "json_response";

// A request one API can say and the other cannot: a 4xx naming the field, never a silent change of meaning.
export class Untranslatable extends Error {
	constructor(
		public field: string,
		why: string
	) {
		super(`${field}: ${why}`);
	}
}

const FINISH_OF_STOP: Record<string, string> = {
	end_turn: "stop",
	stop_sequence: "stop",
	pause_turn: "stop",
	max_tokens: "length",
	model_context_window_exceeded: "length",
	tool_use: "tool_calls",
	refusal: "content_filter"
};
const STOP_OF_FINISH: Record<string, string> = {
	stop: "end_turn",
	length: "max_tokens",
	tool_calls: "tool_use",
	function_call: "tool_use",
	content_filter: "refusal"
};
export const finishOf = (stop: string | null | undefined) => (stop ? (FINISH_OF_STOP[stop] ?? "stop") : null);
export const stopOf = (finish: string | null | undefined) => (finish ? (STOP_OF_FINISH[finish] ?? "end_turn") : null);

// Anthropic counts cache reads and writes apart from input_tokens; OpenAI's prompt_tokens include them.
export function openAiUsage(u: Json | undefined) {
	const cached = u?.cache_read_input_tokens ?? 0;
	const written = u?.cache_creation_input_tokens ?? 0;
	const prompt = (u?.input_tokens ?? 0) + cached + written;
	const completion = u?.output_tokens ?? 0;
	return {
		prompt_tokens: prompt,
		completion_tokens: completion,
		total_tokens: prompt + completion,
		// cache_write_tokens is the platform's own: OpenAI has no cache writes to report.
		prompt_tokens_details: { cached_tokens: cached, ...(written ? { cache_write_tokens: written } : {}) }
	};
}

export function anthropicUsage(u: Json | undefined) {
	const cached = u?.prompt_tokens_details?.cached_tokens ?? 0;
	const written = u?.prompt_tokens_details?.cache_write_tokens ?? 0;
	return {
		input_tokens: Math.max(0, (u?.prompt_tokens ?? 0) - cached - written),
		output_tokens: u?.completion_tokens ?? 0,
		cache_read_input_tokens: cached,
		cache_creation_input_tokens: written
	};
}

const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+);base64,(.*)$/s;

// ---- outbound: OpenAI chat request → Messages request -------------------------------------------------------

function textOf(content: unknown, field: string): string {
	if (typeof content === "string") return content;
	if (content == null) return "";
	if (!Array.isArray(content)) throw new Untranslatable(field, "must be a string or a list of parts");
	return content
		.map((p, i) => {
			if (isObject(p) && p.type === "text" && typeof p.text === "string") return p.text;
			throw new Untranslatable(`${field}[${i}]`, "only text parts can be sent here");
		})
		.join("\n");
}

function contentBlocks(content: unknown, field: string): Json[] {
	if (typeof content === "string") return content ? [{ type: "text", text: content }] : [];
	if (content == null) return [];
	if (!Array.isArray(content)) throw new Untranslatable(field, "must be a string or a list of parts");
	return content.flatMap((p, i): Json[] => {
		const at = `${field}[${i}]`;
		if (isObject(p) && p.type === "text" && typeof p.text === "string")
			return p.text ? [{ type: "text", text: p.text }] : [];
		if (isObject(p) && p.type === "image_url" && typeof p.image_url?.url === "string") {
			const data = DATA_URL.exec(p.image_url.url);
			const source = data
				? { type: "base64", media_type: data[1], data: data[2] }
				: { type: "url", url: p.image_url.url };
			return [{ type: "image", source }];
		}
		throw new Untranslatable(at, `parts of type ${JSON.stringify(p?.type)} cannot be sent to an Anthropic model`);
	});
}

function toolUses(calls: unknown, field: string): Json[] {
	if (calls == null) return [];
	if (!Array.isArray(calls)) throw new Untranslatable(field, "must be a list");
	return calls.map((c, i) => {
		const at = `${field}[${i}]`;
		if (!isObject(c) || !isObject(c.function) || typeof c.function.name !== "string")
			throw new Untranslatable(at, "must be a function call with a name");
		let input: unknown = {};
		try {
			if (c.function.arguments) input = JSON.parse(c.function.arguments);
		} catch {
			throw new Untranslatable(`${at}.function.arguments`, "is not JSON");
		}
		if (!isObject(input)) throw new Untranslatable(`${at}.function.arguments`, "must be a JSON object");
		return { type: "tool_use", id: String(c.id ?? `call_${i}`), name: c.function.name, input };
	});
}

function toolChoice(choice: unknown): Json | undefined {
	if (choice == null) return undefined;
	if (choice === "auto") return { type: "auto" };
	if (choice === "required") return { type: "any" };
	if (choice === "none") return { type: "none" };
	if (isObject(choice) && typeof choice.function?.name === "string")
		return { type: "tool", name: choice.function.name };
	throw new Untranslatable("tool_choice", "must be auto, required, none or a named function");
}

export function toMessagesRequest(body: Json, model: string): Json {
	const system: string[] = [];
	const messages: { role: "user" | "assistant"; content: Json[] }[] = [];
	// Anthropic's turns alternate; OpenAI's tool answers are messages of their own, joined to the user's turn here.
	const push = (role: "user" | "assistant", blocks: Json[]) => {
		if (!blocks.length) return;
		const last = messages[messages.length - 1];
		if (last?.role === role) last.content.push(...blocks);
		else messages.push({ role, content: blocks });
	};
	(body.messages as Json[]).forEach((m, i) => {
		const at = `messages[${i}]`;
		if (m.role === "system" || m.role === "developer") {
			const text = textOf(m.content, `${at}.content`);
			if (text) system.push(text);
		} else if (m.role === "user") push("user", contentBlocks(m.content, `${at}.content`));
		else if (m.role === "assistant")
			push("assistant", [
				...contentBlocks(m.content, `${at}.content`),
				...toolUses(m.tool_calls, `${at}.tool_calls`)
			]);
		else if (m.role === "tool")
			push("user", [
				{
					type: "tool_result",
					tool_use_id: String(m.tool_call_id ?? ""),
					content: textOf(m.content, `${at}.content`)
				}
			]);
	});
	const out: Json = {
		model,
		max_tokens: body.max_completion_tokens ?? body.max_tokens ?? DEFAULT_MAX_TOKENS,
		messages
	};
	if (system.length) out.system = system.join("\n\n");
	if (body.temperature !== undefined) out.temperature = body.temperature;
	if (body.top_p !== undefined) out.top_p = body.top_p;
	if (body.stop !== undefined && body.stop !== null)
		out.stop_sequences = Array.isArray(body.stop) ? body.stop : [body.stop];
	if (Array.isArray(body.tools) && body.tools.length)
		out.tools = body.tools.map((t: Json, i: number) => {
			if (t?.type !== "function" || typeof t.function?.name !== "string")
				throw new Untranslatable(`tools[${i}]`, "only function tools can be sent to an Anthropic model");
			const f = t.function;
			return {
				name: f.name,
				...(f.description ? { description: f.description } : {}),
				input_schema: f.parameters ?? { type: "object", properties: {} }
			};
		});
	const choice = toolChoice(body.tool_choice);
	if (choice) out.tool_choice = choice;
	if (body.parallel_tool_calls === false && choice?.type !== "none")
		out.tool_choice = { ...(choice ?? { type: "auto" }), disable_parallel_tool_use: true };
	if (body.n !== undefined && body.n !== 1)
		throw new Untranslatable("n", "an Anthropic provider answers with one choice");
	if (body.logprobs) throw new Untranslatable("logprobs", "an Anthropic provider has no log probabilities");
	const format = body.response_format?.type;
	if (format === "json_object" || format === "json_schema") {
		if (out.tools)
			throw new Untranslatable("response_format", "cannot be combined with tools for an Anthropic provider");
		const schema = format === "json_schema" ? body.response_format.json_schema?.schema : {};
		if (!isObject(schema) || (schema.type !== undefined && schema.type !== "object"))
			throw new Untranslatable("response_format.json_schema.schema", "must describe a JSON object");
		const description = "Answer with a JSON object of this shape.";
		out.tools = [{ name: JSON_TOOL, description, input_schema: { ...schema, type: "object" } }];
		out.tool_choice = { type: "tool", name: JSON_TOOL };
	} else if (format && format !== "text")
		throw new Untranslatable("response_format", `${format} is not available from an Anthropic provider`);
	if (typeof body.user === "string") out.metadata = { user_id: body.user };
	if (body.stream) out.stream = true;
	return out;
}

// ---- outbound: message (or its events) → chat completion (or its chunks) ---------------------------------------

export function isMessage(x: unknown): x is Json {
	return isObject(x) && x.type === "message" && Array.isArray(x.content) && x.content.every(isObject);
}

// `json`: the request asked for a response_format (JSON_TOOL's input is the answer's content).
export const asksJson = (request: Json) =>
	request.tool_choice?.type === "tool" && request.tool_choice.name === JSON_TOOL;

export function fromMessage(msg: Json, json = false, created = Math.floor(Date.now() / 1000)): Json {
	const answer = json ? msg.content.find((b: Json) => b.type === "tool_use" && b.name === JSON_TOOL) : undefined;
	const text = answer
		? JSON.stringify(answer.input ?? {})
		: msg.content
				.filter((b: Json) => b.type === "text")
				.map((b: Json) => b.text ?? "")
				.join("");
	const calls = msg.content
		.filter((b: Json) => b.type === "tool_use" && b !== answer)
		.map((b: Json) => ({
			id: b.id,
			type: "function",
			function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) }
		}));
	const message: Json = { role: "assistant", content: text || (calls.length ? null : ""), refusal: null };
	if (calls.length) message.tool_calls = calls;
	return {
		id: msg.id,
		object: "chat.completion",
		created,
		model: msg.model,
		choices: [
			{
				index: 0,
				message,
				finish_reason: answer ? "stop" : (finishOf(msg.stop_reason) ?? "stop"),
				logprobs: null
			}
		],
		usage: openAiUsage(msg.usage)
	};
}

// An Anthropic event stream, one event at a time, as OpenAI chunks: the role on the first, tool calls numbered in
// the order they open, the finish reason from message_delta, usage in a last chunk without choices. message_start
// comes before the model has produced anything, so it yields no chunk: the first chunk is the first token, which is
// what the router's first-token deadline and fallbacks wait for.
export class ChunksOfEvents {
	private id = "";
	private model: string;
	private created = Math.floor(Date.now() / 1000);
	private usage: Json = {};
	private tools = new Map<number, number>(); // content block index → tool call index
	private answerBlock: number | undefined; // the JSON_TOOL block whose input is the answer (json)
	private roleSent = false;
	ended = false;

	constructor(
		model: string,
		private json = false
	) {
		this.model = model;
	}

	private chunk(delta: Json, finish: string | null = null): Json {
		if (!this.roleSent) {
			delta = { role: "assistant", ...delta };
			this.roleSent = true;
		}
		const choice = { index: 0, delta, finish_reason: finish, logprobs: null };
		return {
			id: this.id,
			object: "chat.completion.chunk",
			created: this.created,
			model: this.model,
			choices: [choice]
		};
	}

	next(event: Json): Json[] {
		switch (event.type) {
			case "message_start": {
				const m = event.message ?? {};
				this.id = m.id ?? this.id;
				this.model = m.model ?? this.model;
				this.usage = { ...m.usage };
				return [];
			}
			case "content_block_start": {
				const b = event.content_block ?? {};
				if (b.type === "tool_use" && this.json && b.name === JSON_TOOL) {
					this.answerBlock = event.index;
					return [];
				}
				if (b.type === "tool_use") {
					const index = this.tools.size;
					this.tools.set(event.index, index);
					const call = { index, id: b.id, type: "function", function: { name: b.name, arguments: "" } };
					return [this.chunk({ tool_calls: [call] })];
				}
				return b.type === "text" && b.text ? [this.chunk({ content: b.text })] : [];
			}
			case "content_block_delta": {
				const d = event.delta ?? {};
				if (d.type === "text_delta") return [this.chunk({ content: d.text ?? "" })];
				if (d.type === "input_json_delta" && event.index === this.answerBlock)
					return d.partial_json ? [this.chunk({ content: d.partial_json })] : [];
				const index = this.tools.get(event.index);
				if (d.type === "input_json_delta" && index !== undefined)
					return [this.chunk({ tool_calls: [{ index, function: { arguments: d.partial_json ?? "" } }] })];
				return [];
			}
			case "message_delta": {
				// Counters here are whole-message totals, present only when they apply.
				for (const [k, v] of Object.entries(event.usage ?? {})) if (v != null) this.usage[k] = v;
				const stop = event.delta?.stop_reason;
				const finish = stop === "tool_use" && this.answerBlock !== undefined ? "stop" : finishOf(stop);
				return finish ? [this.chunk({}, finish)] : [];
			}
			case "message_stop":
				this.ended = true;
				return [
					{
						id: this.id,
						object: "chat.completion.chunk",
						created: this.created,
						model: this.model,
						choices: [],
						usage: openAiUsage(this.usage)
					}
				];
			default:
				return []; // ping, content_block_stop, and kinds of block OpenAI has no words for (thinking)
		}
	}
}

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
