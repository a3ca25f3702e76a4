// Anthropic both ways, with the official SDKs as clients of a real gateway (in this process, real PostgreSQL and
// Redis): a provider of kind "anthropic" (a fake Messages API on 127.0.0.1 with the real API's edge cases) reached
// through /v1/chat/completions by the openai SDK, and the inbound /v1/messages reached by the Anthropic SDK, served
// by an OpenAI-dialect upstream or by the Anthropic provider.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { describeWith, createTestDatabase, uniqueNamespace, REDIS_URL } from "../helpers/infra";
import { startGateway, http, register, TestGateway, Member } from "../helpers/gateway";
import { FakeOpenAI } from "../helpers/fake-openai";
import { FakeAnthropic } from "../helpers/fake-anthropic";
import { waitUntil } from "../helpers/wait";

const AI_FILES = ["secrets/secrets", "ai/ai", "ai/providers", "ai/deployments", "ai/fallbacks", "ai/limits"].map(
	s => `services/${s}.service.ts`
);
const ANTHROPIC_KEY = "sk-ant-fake-5a7c1e";
const WEATHER = { city: "Zürich", days: 3, units: "metric" };

describeWith(["postgres", "redis"])("Anthropic: a provider kind, and /v1/messages", () => {
	const openAiUp = new FakeOpenAI();
	const anthropicUp = new FakeAnthropic(ANTHROPIC_KEY);
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	let owner: Member;
	let apiKey: string;
	let openai: OpenAI;
	let anthropic: Anthropic;
	const admin = async (method: string, path: string, body?: unknown) => {
		const r = await http(gw.port, method, path, { token: owner.accessToken, org: owner.organization.id, body });
		if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
		return r.body;
	};
	const logs = async (model: string) =>
		(await admin("GET", `/api/ai/logs?model=${encodeURIComponent(model)}`)).rows as any[];

	beforeAll(async () => {
		const [openAiUrl, anthropicUrl] = [await openAiUp.start(), await anthropicUp.start()];
		db = await createTestDatabase();
		gw = await startGateway(
			{
				DATABASE_URL: db.url,
				REDIS_URL,
				NAMESPACE: uniqueNamespace("anth"),
				AI_LOG_BATCH_MS: "0",
				AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1"
			},
			AI_FILES
		);
		owner = await register(gw.port, "anthropic-owner@example.com");
		await admin("POST", "/api/secrets", { environment: "production", name: "ANTHROPIC_KEY", value: ANTHROPIC_KEY });
		await admin("POST", "/api/secrets", { environment: "production", name: "OPENAI_KEY", value: "sk-openai-1" });
		const claude = await admin("POST", "/api/ai/providers", {
			name: "anthropic",
			kind: "anthropic",
			base_url: anthropicUrl,
			api_key_secret: "ANTHROPIC_KEY",
			timeout_ms: 5000
		});
		const gpt = await admin("POST", "/api/ai/providers", {
			name: "openai",
			base_url: openAiUrl,
			api_key_secret: "OPENAI_KEY",
			timeout_ms: 5000
		});
		const impatient = await admin("POST", "/api/ai/providers", {
			name: "anthropic-impatient",
			kind: "anthropic",
			base_url: anthropicUrl,
			api_key_secret: "ANTHROPIC_KEY",
			timeout_ms: 300
		});
		const deploy = (provider: any, name: string, provider_model: string) =>
			admin("POST", "/api/ai/deployments", { provider_id: provider.id, name, provider_model });
		await deploy(claude, "claude", "claude-up");
		await deploy(claude, "claude-tools", "claude-tools-up");
		await deploy(claude, "claude-overloaded", "claude-overloaded-up");
		await deploy(claude, "claude-breaks", "claude-breaks-up");
		await deploy(claude, "claude-html", "claude-html-up");
		await deploy(claude, "claude-early", "claude-early-up");
		await deploy(claude, "claude-json", "claude-json-up");
		await deploy(impatient, "claude-hangs", "claude-hangs-up");
		await deploy(gpt, "gpt", "gpt-up");
		await deploy(gpt, "gpt-tools", "gpt-tools-up");
		await deploy(gpt, "gpt-slow", "gpt-slow-up");
		await deploy(gpt, "gpt-limited", "gpt-up");
		await admin("POST", "/api/ai/rate-limits", { scope: "model", model: "gpt-limited", requests_per_minute: 1 });
		await admin("POST", "/api/ai/fallback-chains", { model: "claude-overloaded", fallbacks: ["gpt"] });
		await admin("POST", "/api/ai/fallback-chains", { model: "claude-early", fallbacks: ["gpt"] });
		anthropicUp.set("claude-tools-up", { content: "Let me look.", tool: { name: "get_weather", input: WEATHER } });
		anthropicUp.set("claude-overloaded-up", { status: 529 });
		anthropicUp.set("claude-breaks-up", { content: "one two three four five", errorAfterDeltas: 2 });
		anthropicUp.set("claude-json-up", { content: "", tool: { name: "json_response", input: WEATHER } });
		anthropicUp.set("claude-hangs-up", { hang: true });
		anthropicUp.set("claude-early-up", { content: "never said", errorAfterDeltas: 0 });
		anthropicUp.set("claude-html-up", { raw: { status: 200, contentType: "text/html", body: "<html>hi</html>" } });
		anthropicUp.set("claude-up", { cacheRead: 7 });
		openAiUp.set("gpt-slow-up", { content: "a b c d e f g h i j k l m n o p", chunkDelayMs: 150 });
		openAiUp.set("gpt-tools-up", { toolCall: { name: "get_weather", arguments: JSON.stringify(WEATHER) } });
		apiKey = (await admin("POST", "/api/auth/api-keys", { name: "agent" })).key;
		openai = new OpenAI({ apiKey, baseURL: `http://127.0.0.1:${gw.port}/v1`, maxRetries: 0 });
		anthropic = new Anthropic({ apiKey, baseURL: `http://127.0.0.1:${gw.port}`, maxRetries: 0 });
	}, 60_000);

	afterAll(async () => {
		await gw?.stop();
		await openAiUp.stop();
		await anthropicUp.stop();
		await db?.drop();
	});

	const weatherTool: OpenAI.Chat.ChatCompletionTool = {
		type: "function",
		function: {
			name: "get_weather",
			description: "The forecast for a city",
			parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
		}
	};

	describe("a provider of kind anthropic, through /v1/chat/completions (openai SDK)", () => {
		test("a completion: Messages request upstream with the key from secrets, answer and usage back", async () => {
			const r = await openai.chat.completions.create({
				model: "claude",
				messages: [
					{ role: "system", content: "Be brief." },
					{ role: "user", content: "hello there" }
				],
				stop: "END"
			});
			expect(r.choices[0].message).toMatchObject({
				role: "assistant",
				content: "claude(claude-up): hello there"
			});
			expect(r.choices[0].finish_reason).toBe("stop");
			expect(r.model).toBe("claude");
			const seen = anthropicUp.last();
			expect(seen.path).toBe("/v1/messages");
			expect(seen.headers["x-api-key"]).toBe(ANTHROPIC_KEY);
			expect(seen.headers["anthropic-version"]).toBe("2023-06-01");
			expect(seen.headers.authorization).toBeUndefined();
			expect(seen.body).toMatchObject({
				model: "claude-up",
				system: "Be brief.",
				max_tokens: 4096,
				stop_sequences: ["END"],
				messages: [{ role: "user", content: [{ type: "text", text: "hello there" }] }]
			});
			// Cache reads count in prompt_tokens (OpenAI's sense) and as cached tokens.
			expect(r.usage!.prompt_tokens_details!.cached_tokens).toBe(7);
			expect(r.usage!.prompt_tokens).toBeGreaterThan(7);
			const row = await waitUntil<any>(
				"the completion log row",
				async () => (await logs("claude")).find(l => l.status === "success" && !l.stream),
				Boolean
			);
			expect(row).toMatchObject({
				served_model: "claude",
				cached_tokens: 7,
				prompt_tokens: r.usage!.prompt_tokens
			});
		});

		test("chat.completions.stream(): pings and split events skipped, role first, text deltas, usage at the end", async () => {
			const stream = openai.chat.completions.stream({
				model: "claude",
				messages: [{ role: "user", content: "stream me some words" }],
				stream_options: { include_usage: true }
			});
			const deltas: string[] = [];
			stream.on("content", delta => deltas.push(delta));
			const final = await stream.finalChatCompletion();
			expect(final.choices[0].message.content).toBe("claude(claude-up): stream me some words");
			expect(deltas.length).toBeGreaterThan(2);
			expect(deltas.join("")).toBe(final.choices[0].message.content);
			expect(final.choices[0].finish_reason).toBe("stop");
			expect(final.usage?.completion_tokens).toBeGreaterThan(0);
			expect(anthropicUp.last().body.stream).toBe(true);
		});

		test("tools: OpenAI tools go up as Anthropic tools, tool_use comes back as tool_calls", async () => {
			const r = await openai.chat.completions.create({
				model: "claude-tools",
				messages: [{ role: "user", content: "weather?" }],
				tools: [weatherTool],
				tool_choice: "required"
			});
			const choice = r.choices[0];
			expect(choice.finish_reason).toBe("tool_calls");
			expect(choice.message.content).toBe("Let me look.");
			const call = choice.message.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
			expect(call.function.name).toBe("get_weather");
			expect(JSON.parse(call.function.arguments)).toEqual(WEATHER);
			expect(anthropicUp.last().body).toMatchObject({
				tools: [
					{
						name: "get_weather",
						description: "The forecast for a city",
						input_schema: { required: ["city"] }
					}
				],
				tool_choice: { type: "any" }
			});

			// The tool's answer goes back as a tool_result in the user's turn, after the assistant's tool_use.
			await openai.chat.completions.create({
				model: "claude-tools",
				messages: [
					{ role: "user", content: "weather?" },
					choice.message as OpenAI.Chat.ChatCompletionMessageParam,
					{ role: "tool", tool_call_id: call.id, content: "sunny, 21°C" }
				],
				tools: [weatherTool]
			});
			const sent = anthropicUp.last().body.messages;
			expect(sent[1]).toEqual({
				role: "assistant",
				content: [
					{ type: "text", text: "Let me look." },
					{ type: "tool_use", id: call.id, name: "get_weather", input: WEATHER }
				]
			});
			expect(sent[2]).toEqual({
				role: "user",
				content: [{ type: "tool_result", tool_use_id: call.id, content: "sunny, 21°C" }]
			});
		});

		test("an assistant turn that only called tools (content null) can be sent back, as the openai SDK does", async () => {
			const first = await openai.chat.completions.create({
				model: "gpt-tools",
				messages: [{ role: "user", content: "weather?" }],
				tools: [weatherTool]
			});
			const message = first.choices[0].message;
			expect(message.content).toBeNull();
			const call = message.tool_calls![0];
			const next = await openai.chat.completions.create({
				model: "gpt",
				messages: [
					{ role: "user", content: "weather?" },
					message as OpenAI.Chat.ChatCompletionMessageParam,
					{ role: "tool", tool_call_id: call.id, content: "sunny" }
				]
			});
			expect(next.choices[0].message.content).toBe("echo(gpt-up): weather?");
		});

		test("tool-call streaming: input_json_delta cut mid-token becomes argument deltas the SDK reassembles", async () => {
			const stream = openai.chat.completions.stream({
				model: "claude-tools",
				messages: [{ role: "user", content: "weather?" }],
				tools: [weatherTool]
			});
			const argumentDeltas: string[] = [];
			stream.on("tool_calls.function.arguments.delta", e => argumentDeltas.push(e.arguments_delta));
			const final = await stream.finalChatCompletion();
			const call = final.choices[0].message.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
			expect(call.id).toMatch(/^toolu_/);
			expect(JSON.parse(call.function.arguments)).toEqual(WEATHER);
			expect(argumentDeltas.length).toBeGreaterThan(3);
			expect(final.choices[0].message.content).toBe("Let me look.");
			expect(final.choices[0].finish_reason).toBe("tool_calls");
		});

		test("response_format json_schema: parse() and stream() get the JSON, asked of Anthropic as a forced tool call", async () => {
			const schema = {
				type: "object",
				properties: { city: { type: "string" }, days: { type: "integer" }, units: { type: "string" } },
				required: ["city", "days", "units"],
				additionalProperties: false
			};
			const response_format: OpenAI.ResponseFormatJSONSchema = {
				type: "json_schema",
				json_schema: { name: "forecast", schema, strict: true }
			};
			const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: "user", content: "Zürich, 3 days" }];
			const parsed = await openai.chat.completions.parse({ model: "claude-json", messages, response_format });
			expect(parsed.choices[0].message.parsed).toEqual(WEATHER);
			expect(parsed.choices[0].message.tool_calls ?? []).toEqual([]);
			expect(parsed.choices[0].finish_reason).toBe("stop");
			expect(anthropicUp.last().body).toMatchObject({
				tools: [{ name: "json_response", input_schema: schema }],
				tool_choice: { type: "tool", name: "json_response" }
			});

			const final = await openai.chat.completions
				.stream({ model: "claude-json", messages, response_format })
				.finalChatCompletion();
			// The stream helper parses only zod formats; the content is the JSON.
			expect(JSON.parse(final.choices[0].message.content!)).toEqual(WEATHER);
			expect(final.choices[0].finish_reason).toBe("stop");
		});

		test("529 overloaded is the upstream's failure: the fallback model serves the request", async () => {
			const r = await openai.chat.completions.create({
				model: "claude-overloaded",
				messages: [{ role: "user", content: "anyone?" }]
			});
			expect(r.choices[0].message.content).toBe("echo(gpt-up): anyone?");
			const row = await waitUntil<any>(
				"the completion log row",
				async () => (await logs("claude-overloaded"))[0],
				Boolean
			);
			expect(row.fallback_path).toEqual(["claude-overloaded@anthropic:server_error", "gpt@openai:ok"]);
		});

		test("an error event after message_start but before the first token: the fallback model streams instead", async () => {
			const stream = openai.chat.completions.stream({
				model: "claude-early",
				messages: [{ role: "user", content: "early" }]
			});
			const final = await stream.finalChatCompletion();
			expect(final.choices[0].message.content).toBe("echo(gpt-up): early");
			const row = await waitUntil<any>(
				"the completion log row",
				async () => (await logs("claude-early"))[0],
				Boolean
			);
			expect(row.fallback_path).toEqual(["claude-early@anthropic:server_error", "gpt@openai:ok"]);
		});

		test("the provider's timeout applies: a silent upstream is a 504 after timeout_ms", async () => {
			const started = Date.now();
			const err = await openai.chat.completions
				.create({ model: "claude-hangs", messages: [{ role: "user", content: "hello?" }] })
				.catch(e => e);
			expect(err).toBeInstanceOf(OpenAI.APIError);
			expect(err.status).toBe(504);
			expect(err.message).toMatch(/upstream did not answer within 300 ms/);
			expect(Date.now() - started).toBeLessThan(3000);
		});

		test("an error event mid-stream reaches the client as an error, never as a clean finish", async () => {
			const stream = openai.chat.completions.stream({
				model: "claude-breaks",
				messages: [{ role: "user", content: "go" }]
			});
			const deltas: string[] = [];
			stream.on("content", d => deltas.push(d));
			const err = await stream.finalChatCompletion().catch(e => e);
			expect(err).toBeInstanceOf(Error);
			expect(String(err.message)).toMatch(/stream interrupted: upstream error: Overloaded/);
			expect(deltas.join("")).toBe("one two ");
		});

		test("refusals: an upstream 400 is quoted, an HTML answer is named, a wrong key is the upstream's 401", async () => {
			const both = await openai.chat.completions
				.create({
					model: "claude",
					messages: [{ role: "user", content: "x" }],
					tools: [weatherTool],
					response_format: { type: "json_object" }
				})
				.catch(e => e);
			expect(both).toBeInstanceOf(OpenAI.BadRequestError);
			expect(both.message).toMatch(/response_format: cannot be combined with tools for an Anthropic provider/);

			const html = await openai.chat.completions
				.create({ model: "claude-html", messages: [{ role: "user", content: "x" }] })
				.catch(e => e);
			expect(html.status).toBe(502);
			expect(html.message).toMatch(/not an Anthropic message/);

			const noUser = await openai.chat.completions
				.create({ model: "claude", messages: [{ role: "system", content: "only this" }] })
				.catch(e => e);
			expect(noUser).toBeInstanceOf(OpenAI.BadRequestError);
			expect(noUser.message).toMatch(/upstream refused the request \(400\): messages: at least one message/);
		});
	});

	describe("the inbound /v1/messages (Anthropic SDK)", () => {
		test("messages.create through an OpenAI-dialect upstream: message shape, usage, and the completion log", async () => {
			const msg = await anthropic.messages.create({
				model: "gpt",
				max_tokens: 100,
				system: "You are terse.",
				messages: [{ role: "user", content: "hi from claude code" }]
			});
			expect(msg).toMatchObject({
				type: "message",
				role: "assistant",
				model: "gpt",
				stop_reason: "end_turn",
				content: [{ type: "text", text: "echo(gpt-up): hi from claude code" }]
			});
			expect(msg.id).toMatch(/^msg_/);
			expect(msg.usage.input_tokens).toBeGreaterThan(0);
			expect(msg.usage.output_tokens).toBeGreaterThan(0);
			expect(openAiUp.requests[openAiUp.requests.length - 1].body).toMatchObject({
				max_tokens: 100,
				messages: [
					{ role: "system", content: "You are terse." },
					{ role: "user", content: "hi from claude code" }
				]
			});
			const row = await waitUntil<any>("the completion log row", async () => (await logs("gpt"))[0], Boolean);
			expect(row).toMatchObject({ status: "success", prompt_tokens: msg.usage.input_tokens });
			expect(row.api_key_id).toBeTruthy();
		});

		test("messages.stream: Anthropic's event sequence, text deltas, finalMessage()", async () => {
			const stream = anthropic.messages.stream({
				model: "gpt",
				max_tokens: 100,
				messages: [{ role: "user", content: "tell me a short story please" }]
			});
			const texts: string[] = [];
			const types: string[] = [];
			stream.on("text", t => texts.push(t));
			let started: Anthropic.MessageStartEvent | undefined;
			stream.on("streamEvent", e => {
				types.push(e.type);
				if (e.type === "message_start") started = e;
			});
			const final = await stream.finalMessage();
			expect(final.content).toEqual([{ type: "text", text: "echo(gpt-up): tell me a short story please" }]);
			expect(texts.length).toBeGreaterThan(2);
			expect(texts.join("")).toBe((final.content[0] as Anthropic.TextBlock).text);
			expect(final.stop_reason).toBe("end_turn");
			expect(final.usage.output_tokens).toBeGreaterThan(0);
			expect(final.usage.input_tokens).toBeGreaterThan(0);
			expect(types[0]).toBe("message_start");
			// An estimate until the upstream has counted; message_delta's count replaces it.
			expect(started!.message.usage.input_tokens).toBeGreaterThan(0);
			expect(types[1]).toBe("content_block_start");
			expect(types.slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
			const row = await waitUntil<any>(
				"the streamed completion's log row",
				async () => (await logs("gpt")).find(l => l.stream),
				Boolean
			);
			expect(row.completion_tokens).toBe(final.usage.output_tokens);
		});

		const anthropicTool: Anthropic.Tool = {
			name: "get_weather",
			description: "The forecast for a city",
			input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
		};

		test("tool use from an OpenAI-dialect upstream, plain and streamed; the tool_result goes back as a tool message", async () => {
			const msg = await anthropic.messages.create({
				model: "gpt-tools",
				max_tokens: 100,
				tools: [anthropicTool],
				tool_choice: { type: "tool", name: "get_weather" },
				messages: [{ role: "user", content: "weather?" }]
			});
			expect(msg.stop_reason).toBe("tool_use");
			const use = msg.content.find(b => b.type === "tool_use") as Anthropic.ToolUseBlock;
			expect(use).toMatchObject({ name: "get_weather", input: WEATHER });
			expect(openAiUp.requests[openAiUp.requests.length - 1].body).toMatchObject({
				tools: [
					{ type: "function", function: { name: "get_weather", parameters: anthropicTool.input_schema } }
				],
				tool_choice: { type: "function", function: { name: "get_weather" } }
			});

			const stream = anthropic.messages.stream({
				model: "gpt-tools",
				max_tokens: 100,
				tools: [anthropicTool],
				messages: [
					{ role: "user", content: "weather?" },
					{ role: "assistant", content: msg.content },
					{ role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "sunny" }] }
				]
			});
			const json: string[] = [];
			stream.on("inputJson", partial => json.push(partial));
			const final = await stream.finalMessage();
			expect(final.stop_reason).toBe("tool_use");
			expect(final.content).toEqual([
				{ type: "tool_use", id: expect.stringMatching(/^call_/), name: "get_weather", input: WEATHER }
			]);
			expect(json.length).toBeGreaterThan(3);
			expect(openAiUp.requests[openAiUp.requests.length - 1].body.messages.slice(1)).toEqual([
				{
					role: "assistant",
					content: null,
					tool_calls: [
						{
							id: use.id,
							type: "function",
							function: { name: "get_weather", arguments: JSON.stringify(WEATHER) }
						}
					]
				},
				{ role: "tool", tool_call_id: use.id, content: "sunny" }
			]);
		});

		test("a client that aborts the stream cancels the upstream request; the log says cancelled", async () => {
			const stream = anthropic.messages.stream({
				model: "gpt-slow",
				max_tokens: 100,
				messages: [{ role: "user", content: "slowly" }]
			});
			await new Promise<void>(resolve => stream.on("text", () => resolve()));
			stream.abort();
			await expect(stream.done()).rejects.toThrow();
			const seen = openAiUp.requests.find(r => r.model === "gpt-slow-up")!;
			await waitUntil("the upstream request to be aborted", async () => seen.aborted, Boolean, 5000);
			expect(seen.finished).toBe(false);
			const row = await waitUntil<any>("the cancelled log row", async () => (await logs("gpt-slow"))[0], Boolean);
			expect(row).toMatchObject({ status: "cancelled", stream: true });
		});

		test("served by the Anthropic provider: both translations, streamed tool use intact", async () => {
			const final = await anthropic.messages
				.stream({
					model: "claude-tools",
					max_tokens: 200,
					tools: [anthropicTool],
					messages: [{ role: "user", content: "weather in Zürich?" }]
				})
				.finalMessage();
			expect(final.content).toEqual([
				{ type: "text", text: "Let me look." },
				{ type: "tool_use", id: expect.stringMatching(/^toolu_/), name: "get_weather", input: WEATHER }
			]);
			expect(final.stop_reason).toBe("tool_use");
			expect(anthropicUp.last().body).toMatchObject({ max_tokens: 200, tools: [{ name: "get_weather" }] });
		});

		test("the beta endpoint (?beta=true, as Claude Code calls it) and count_tokens", async () => {
			const msg = await anthropic.beta.messages.create({
				model: "gpt",
				max_tokens: 20,
				system: [{ type: "text", text: "Cached system.", cache_control: { type: "ephemeral" } }],
				messages: [
					{ role: "user", content: [{ type: "text", text: "beta hi", cache_control: { type: "ephemeral" } }] }
				],
				betas: ["interleaved-thinking-2025-05-14"]
			});
			expect(msg.content).toEqual([{ type: "text", text: "echo(gpt-up): beta hi" }]);

			const counted = await anthropic.messages.countTokens({
				model: "gpt",
				messages: [{ role: "user", content: "x".repeat(400) }],
				tools: [anthropicTool]
			});
			expect(counted.input_tokens).toBeGreaterThan(100);
			const unknown = await anthropic.messages
				.countTokens({ model: "nope", messages: [{ role: "user", content: "x" }] })
				.catch(e => e);
			expect(unknown).toBeInstanceOf(Anthropic.NotFoundError);
			const anonymous = await http(gw.port, "POST", "/v1/messages/count_tokens", {
				body: { model: "gpt", messages: [{ role: "user", content: "x" }] }
			});
			expect(anonymous.status).toBe(401);
			expect(anonymous.body.error.type).toBe("authentication_error");
		});

		test("an x-api-key or a bearer token; errors in Anthropic's shape with the right status", async () => {
			const bearer = new Anthropic({ authToken: apiKey, baseURL: `http://127.0.0.1:${gw.port}`, maxRetries: 0 });
			const msg = await bearer.messages.create({
				model: "gpt",
				max_tokens: 5,
				messages: [{ role: "user", content: "b" }]
			});
			expect(msg.content[0]).toMatchObject({ type: "text" });

			const stranger = new Anthropic({
				apiKey: "cide_00000000_notarealkey",
				baseURL: `http://127.0.0.1:${gw.port}`,
				maxRetries: 0
			});
			const unauthenticated = await stranger.messages
				.create({ model: "gpt", max_tokens: 5, messages: [{ role: "user", content: "x" }] })
				.catch(e => e);
			expect(unauthenticated).toBeInstanceOf(Anthropic.AuthenticationError);
			expect(unauthenticated.error).toMatchObject({ type: "error", error: { type: "authentication_error" } });

			const missing = await anthropic.messages
				.create({ model: "nope", max_tokens: 5, messages: [{ role: "user", content: "x" }] })
				.catch(e => e);
			expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
			expect(missing.error.error).toMatchObject({
				type: "not_found_error",
				message: expect.stringMatching(/nope/)
			});

			const raw = await http(gw.port, "POST", "/v1/messages", {
				headers: { "x-api-key": apiKey },
				body: { model: "gpt", messages: [{ role: "user", content: "x" }] }
			});
			expect(raw.status).toBe(400);
			expect(raw.body).toEqual({
				type: "error",
				error: { type: "invalid_request_error", message: expect.stringMatching(/^max_tokens: /) }
			});
			const malformed = await http(gw.port, "POST", "/v1/messages", {
				headers: { "x-api-key": apiKey },
				raw: "{"
			});
			expect(malformed.status).toBe(400);
			expect(malformed.body).toEqual({
				type: "error",
				error: { type: "invalid_request_error", message: "request body is not valid JSON" }
			});

			const missingStream = await anthropic.messages
				.create({ model: "nope", max_tokens: 5, messages: [{ role: "user", content: "x" }], stream: true })
				.catch(e => e);
			expect(missingStream).toBeInstanceOf(Anthropic.NotFoundError);

			const ask = { model: "gpt-limited", max_tokens: 5, messages: [{ role: "user" as const, content: "x" }] };
			await anthropic.messages.create(ask);
			const limited = await anthropic.messages.create(ask).catch(e => e);
			expect(limited).toBeInstanceOf(Anthropic.RateLimitError);
			expect(limited.error.error.type).toBe("rate_limit_error");
			expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);

			const overloaded = await anthropic.messages
				.create({
					model: "claude-breaks",
					max_tokens: 5,
					messages: [{ role: "user", content: "x" }],
					stream: true
				})
				.then(async s => {
					for await (const _ of s) void _;
				})
				.catch(e => e);
			expect(overloaded).toBeInstanceOf(Anthropic.APIError);
			expect(String(overloaded.message)).toMatch(/stream interrupted/);
		});
	});
});
