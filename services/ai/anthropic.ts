// Anthropic's Messages API in OpenAI's chat-completion terms, outbound (an Anthropic provider): the platform's
// OpenAI-shaped request becomes a Messages request, and the message or its event stream becomes a chat completion or
// its chunks. The inbound direction (/v1/messages) is in anthropic-inbound.ts. Pure code over parsed JSON.
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
