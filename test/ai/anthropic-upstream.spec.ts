// The Anthropic translation without the platform around it: the requests each side is sent, the event streams each
// side reads, the SSE reader over awkward byte boundaries, and an Anthropic provider's calls going through the same
// egress policy as every provider's. No infrastructure (a fake Messages API on 127.0.0.1 where a socket is needed).
import { createNodeFetch } from "../../services/ai/transport";
import { HostPolicy, parseHostRules } from "../../lib/egress";
import { classify, UpstreamClients } from "../../services/ai/upstream";
import { messagesUrl } from "../../services/ai/anthropic-upstream";
import { sseEvents } from "../../services/ai/sse";
import {
	anthropicUsage,
	ChunksOfEvents,
	openAiUsage,
	toMessagesRequest,
	Untranslatable
} from "../../services/ai/anthropic";
import { EventsOfChunks, fromMessagesRequest } from "../../services/ai/anthropic-inbound";
import { FakeAnthropic } from "../helpers/fake-anthropic";

const KEY = "sk-ant-unit-77";

describe("OpenAI chat request → Messages request", () => {
	test("system and developer messages become `system`; tool answers join the user's turn after the tool calls", () => {
		const out = toMessagesRequest(
			{
				messages: [
					{ role: "system", content: "Rule one." },
					{ role: "developer", content: [{ type: "text", text: "Rule two." }] },
					{ role: "user", content: "both cities?" },
					{
						role: "assistant",
						content: null,
						tool_calls: [
							{ id: "c1", type: "function", function: { name: "w", arguments: '{"city":"Oslo"}' } },
							{ id: "c2", type: "function", function: { name: "w", arguments: '{"city":"Rome"}' } }
						]
					},
					{ role: "tool", tool_call_id: "c1", content: "cold" },
					{ role: "tool", tool_call_id: "c2", content: "warm" },
					{
						role: "user",
						content: [
							{ type: "text", text: "and this?" },
							{ type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }
						]
					}
				],
				max_completion_tokens: 50,
				user: "u-1"
			},
			"claude-x"
		);
		expect(out).toEqual({
			model: "claude-x",
			max_tokens: 50,
			system: "Rule one.\n\nRule two.",
			metadata: { user_id: "u-1" },
			messages: [
				{ role: "user", content: [{ type: "text", text: "both cities?" }] },
				{
					role: "assistant",
					content: [
						{ type: "tool_use", id: "c1", name: "w", input: { city: "Oslo" } },
						{ type: "tool_use", id: "c2", name: "w", input: { city: "Rome" } }
					]
				},
				{
					role: "user",
					content: [
						{ type: "tool_result", tool_use_id: "c1", content: "cold" },
						{ type: "tool_result", tool_use_id: "c2", content: "warm" },
						{ type: "text", text: "and this?" },
						{ type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } }
					]
				}
			]
		});
	});

	test("what Anthropic cannot take is refused naming the field, not dropped", () => {
		const refused = (body: any) => {
			try {
				toMessagesRequest({ messages: [{ role: "user", content: "x" }], ...body }, "m");
			} catch (err) {
				return err instanceof Untranslatable ? err.field : err;
			}
			return "accepted";
		};
		expect(refused({ messages: [{ role: "user", content: [{ type: "input_audio", input_audio: {} }] }] })).toBe(
			"messages[0].content[0]"
		);
		const badArgs = { role: "assistant", tool_calls: [{ id: "a", function: { name: "f", arguments: "{oops" } }] };
		expect(refused({ messages: [badArgs] })).toBe("messages[0].tool_calls[0].function.arguments");
		expect(refused({ response_format: { type: "json_schema", json_schema: { schema: { type: "array" } } } })).toBe(
			"response_format.json_schema.schema"
		);
		expect(refused({ tool_choice: { type: "allowed_tools" } })).toBe("tool_choice");
		expect(refused({ n: 2 })).toBe("n");
		expect(refused({ logprobs: true })).toBe("logprobs");
		expect(refused({ seed: 1, presence_penalty: 0.5 })).toBe("accepted");
		const tools = [{ type: "function", function: { name: "f" } }];
		const serial = toMessagesRequest(
			{ messages: [{ role: "user", content: "x" }], tools, parallel_tool_calls: false },
			"m"
		);
		expect(serial.tool_choice).toEqual({ type: "auto", disable_parallel_tool_use: true });
	});
});

describe("Anthropic events → OpenAI chunks", () => {
	test("role first, thinking skipped, tool calls numbered from 0 after a text block, usage totals from message_delta", () => {
		const c = new ChunksOfEvents("up");
		const all = [
			{
				type: "message_start",
				message: { id: "msg_1", model: "claude-up", usage: { input_tokens: 10, output_tokens: 1 } }
			},
			{ type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "" } },
			{ type: "content_block_delta", index: 0, delta: { type: "thinking_delta", thinking: "hmm" } },
			{ type: "content_block_stop", index: 0 },
			{ type: "content_block_start", index: 1, content_block: { type: "text", text: "" } },
			{ type: "content_block_delta", index: 1, delta: { type: "text_delta", text: "Hi" } },
			{
				type: "content_block_start",
				index: 2,
				content_block: { type: "tool_use", id: "toolu_a", name: "f", input: {} }
			},
			{ type: "content_block_delta", index: 2, delta: { type: "input_json_delta", partial_json: '{"a' } },
			{
				type: "message_delta",
				delta: { stop_reason: "max_tokens" },
				usage: { output_tokens: 9, input_tokens: 12 }
			},
			{ type: "message_stop" }
		].flatMap(e => c.next(e));
		expect(all.map(x => x.choices[0]?.delta ?? x.usage)).toEqual([
			{ role: "assistant", content: "Hi" },
			{ tool_calls: [{ index: 0, id: "toolu_a", type: "function", function: { name: "f", arguments: "" } }] },
			{ tool_calls: [{ index: 0, function: { arguments: '{"a' } }] },
			{},
			{ prompt_tokens: 12, completion_tokens: 9, total_tokens: 21, prompt_tokens_details: { cached_tokens: 0 } }
		]);
		expect(all[3].choices[0].finish_reason).toBe("length");
		expect(new Set(all.map(x => x.id))).toEqual(new Set(["msg_1"]));
		expect(c.ended).toBe(true);
	});
});

describe("Messages request → the platform's chat request, and its chunks → Anthropic events", () => {
	test("tool results come first as tool messages; an error result says so; images become image parts", () => {
		const { params, stream } = fromMessagesRequest({
			model: "m",
			max_tokens: 10,
			stream: true,
			system: [{ type: "text", text: "Sys." }],
			stop_sequences: ["\n\n"],
			messages: [
				{
					role: "user",
					content: [
						{
							type: "tool_result",
							tool_use_id: "t1",
							content: [{ type: "text", text: "boom" }],
							is_error: true
						},
						{
							type: "tool_result",
							tool_use_id: "t2",
							content: [
								{ type: "text", text: "shot:" },
								{ type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } }
							]
						},
						{ type: "text", text: "see" },
						{ type: "image", source: { type: "url", url: "https://example.com/a.png" } }
					]
				}
			]
		});
		expect(stream).toBe(true);
		expect(params).toEqual({
			model: "m",
			max_tokens: 10,
			stop: ["\n\n"],
			messages: [
				{ role: "system", content: "Sys." },
				{ role: "tool", tool_call_id: "t1", content: "Error: boom" },
				{ role: "tool", tool_call_id: "t2", content: "shot:" },
				{
					role: "user",
					content: [
						{ type: "text", text: "see" },
						{ type: "image_url", image_url: { url: "https://example.com/a.png" } },
						{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }
					]
				}
			]
		});
	});

	test("server tools and unknown blocks are refused naming the field", () => {
		const field = (body: any) => {
			try {
				fromMessagesRequest({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "x" }], ...body });
			} catch (err) {
				return (err as Untranslatable).field;
			}
		};
		expect(field({ tools: [{ type: "web_search_20250305", name: "web_search" }] })).toBe("tools[0]");
		expect(field({ messages: [{ role: "user", content: [{ type: "document", source: {} }] }] })).toBe(
			"messages[0].content[0].type"
		);
		expect(field({ messages: [{ role: "system", content: "x" }] })).toBe("messages[0].role");
		expect(field({ max_tokens: 0 })).toBe("max_tokens");
	});

	test("text then two tool calls: one block each, indexes counting up, stop reason and usage at the end", () => {
		const e = new EventsOfChunks("chatcmpl-9", "m");
		const chunk = (delta: any, finish: string | null = null) => ({
			choices: [{ index: 0, delta, finish_reason: finish }]
		});
		const events = [
			...e.start(),
			...e.next(chunk({ role: "assistant", content: "" })),
			...e.next(chunk({ content: "Checking." })),
			...e.next(chunk({ tool_calls: [{ index: 0, id: "c1", function: { name: "f", arguments: '{"x"' } }] })),
			...e.next(chunk({ tool_calls: [{ index: 0, function: { arguments: ":1}" } }] })),
			...e.next(chunk({ tool_calls: [{ index: 1, id: "c2", function: { name: "g", arguments: "{}" } }] })),
			...e.next(chunk({}, "tool_calls")),
			...e.next({
				done: true,
				usage: { prompt_tokens: 30, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 10 } }
			})
		];
		expect(events.map(x => `${x.event}${x.data.index ?? ""}`)).toEqual([
			"message_start",
			"ping",
			"content_block_start0",
			"content_block_delta0",
			"content_block_stop0",
			"content_block_start1",
			"content_block_delta1",
			"content_block_delta1",
			"content_block_stop1",
			"content_block_start2",
			"content_block_delta2",
			"content_block_stop2",
			"message_delta",
			"message_stop"
		]);
		expect(events[0].data.message.id).toBe("msg_9");
		expect(events[5].data.content_block).toEqual({ type: "tool_use", id: "c1", name: "f", input: {} });
		expect(events[12].data).toEqual({
			type: "message_delta",
			delta: { stop_reason: "tool_use", stop_sequence: null },
			usage: { input_tokens: 20, output_tokens: 5, cache_read_input_tokens: 10, cache_creation_input_tokens: 0 }
		});
	});
});

describe("usage between the two shapes", () => {
	test("cache reads and writes survive Anthropic → OpenAI → Anthropic, and count in prompt_tokens", () => {
		const anthropic = {
			input_tokens: 10,
			cache_read_input_tokens: 5,
			cache_creation_input_tokens: 7,
			output_tokens: 3
		};
		const openai = openAiUsage(anthropic);
		expect(openai).toEqual({
			prompt_tokens: 22,
			completion_tokens: 3,
			total_tokens: 25,
			prompt_tokens_details: { cached_tokens: 5, cache_write_tokens: 7 }
		});
		expect(anthropicUsage(openai)).toEqual({ ...anthropic });
	});
});

describe("parallel tool calls → Anthropic events", () => {
	test("calls that arrive interleaved still come out as one whole block each", () => {
		const e = new EventsOfChunks("chatcmpl-7", "m");
		const piece = (index: number, args: string, first?: { id: string; name: string }) => ({
			choices: [
				{
					index: 0,
					delta: {
						tool_calls: [
							{
								index,
								...(first ? { id: first.id } : {}),
								function: { ...(first ? { name: first.name } : {}), arguments: args }
							}
						]
					},
					finish_reason: null
				}
			]
		});
		const events = [
			...e.start(),
			...e.next(piece(0, '{"city"', { id: "c1", name: "weather" })),
			...e.next(piece(1, '{"zone"', { id: "c2", name: "time" })),
			...e.next(piece(0, ':"Paris"}')),
			...e.next(piece(1, ':"CET"}')),
			...e.next({ choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] }),
			...e.next({ done: true, usage: { prompt_tokens: 3, completion_tokens: 4 } })
		];
		// What the Anthropic SDK's accumulator rebuilds: each block's input from its own deltas only.
		const blocks = new Map<number, { id: string; name: string; json: string }>();
		const order: string[] = [];
		for (const x of events) {
			if (x.event === "content_block_start")
				blocks.set(x.data.index, { id: x.data.content_block.id, name: x.data.content_block.name, json: "" });
			if (x.event === "content_block_delta") blocks.get(x.data.index)!.json += x.data.delta.partial_json;
			if (x.event.startsWith("content_block")) order.push(`${x.event}${x.data.index}`);
		}
		expect([...blocks.values()].map(b => [b.id, b.name, JSON.parse(b.json)])).toEqual([
			["c1", "weather", { city: "Paris" }],
			["c2", "time", { zone: "CET" }]
		]);
		// A block is never written to after the next one started.
		expect(order).toEqual([
			"content_block_start0",
			"content_block_delta0",
			"content_block_delta0",
			"content_block_stop0",
			"content_block_start1",
			"content_block_delta1",
			"content_block_stop1"
		]);
	});
});

describe("the SSE reader", () => {
	test("events cut anywhere, CRLF line ends, comments and multi-line data", async () => {
		const text = ': keep-alive\r\nevent: a\r\ndata: {"x":\r\ndata: 1}\r\n\r\nevent: b\ndata: {}\n\ndata: last';
		const pieces = text.match(/[\s\S]{1,3}/g)!;
		const seen: any[] = [];
		for await (const e of sseEvents(pieces)) seen.push(e);
		expect(seen).toEqual([
			{ event: "a", data: '{"x":\n1}' },
			{ event: "b", data: "{}" },
			{ event: "message", data: "last" }
		]);
	});

	test("{base}/v1/messages, whether or not the base already ends in /v1", () => {
		expect(messagesUrl("https://api.anthropic.com")).toBe("https://api.anthropic.com/v1/messages");
		expect(messagesUrl("https://gw.example.com/anthropic/v1/")).toBe(
			"https://gw.example.com/anthropic/v1/messages"
		);
	});
});

describe("an Anthropic provider's calls", () => {
	const up = new FakeAnthropic(KEY);
	let base = "";
	beforeAll(async () => {
		base = await up.start();
	});
	afterAll(() => up.stop());

	const provider = (url: string) => ({
		id: "p",
		name: "claude",
		kind: "anthropic",
		base_url: url,
		timeout_ms: 1000,
		headers: {}
	});
	const ask = { model: "claude-up", messages: [{ role: "user" as const, content: "hi" }] };

	test("go through the operator's host policy: loopback is refused unless allowed, and nothing reaches it", async () => {
		const refusing = new UpstreamClients(
			createNodeFetch(new HostPolicy([], { variable: "AI_ALLOWED_PRIVATE_HOSTS" }))
		);
		const err = await refusing
			.clientFor(provider(base), { apiKey: KEY, headers: {} })
			.sdk.chat.completions.create(ask)
			.catch(e => e);
		expect(classify(err).kind).toBe("host_refused");
		expect(up.requests).toHaveLength(0);

		const allowing = new UpstreamClients(createNodeFetch(new HostPolicy(parseHostRules("127.0.0.1"))));
		const r = await allowing
			.clientFor(provider(base), { apiKey: KEY, headers: { "anthropic-beta": "x-1" } })
			.sdk.chat.completions.create(ask);
		expect(r.choices[0].message.content).toBe("claude(claude-up): hi");
		expect(up.last().headers["anthropic-beta"]).toBe("x-1");
	});

	test("the model list is Anthropic's, in OpenAI's shape; embeddings are refused", async () => {
		up.set("claude-sonnet-x", {});
		const clients = new UpstreamClients(createNodeFetch(new HostPolicy(parseHostRules("127.0.0.1"))));
		const client = clients.clientFor(provider(base), { apiKey: KEY, headers: {} });
		const models = await client.sdk.models.list();
		expect(models.data).toEqual([
			{ id: "claude-sonnet-x", object: "model", created: 1759104000, owned_by: "anthropic" }
		]);
		expect(up.last().path).toBe("/v1/models");
		const err = await client.sdk.embeddings.create({ model: "claude-sonnet-x", input: "x" }).catch(e => e);
		expect(classify(err).kind).toBe("client_error");
	});

	test("a wrong key is the upstream's refusal (not retryable), in its words, without the key", async () => {
		const clients = new UpstreamClients(createNodeFetch(new HostPolicy(parseHostRules("127.0.0.1"))));
		const err = await clients
			.clientFor(provider(base), { apiKey: "sk-ant-wrong", headers: {} })
			.sdk.chat.completions.create(ask)
			.catch(e => e);
		const f = classify(err, undefined, ["sk-ant-wrong"]);
		expect([f.kind, f.status, f.retryable]).toEqual(["client_error", 401, false]);
		expect(f.message).toBe("upstream refused the request (401): invalid x-api-key");
	});
});
