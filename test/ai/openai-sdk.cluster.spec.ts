// The official openai SDK, helpers included, against the gateway's /v1 over a cluster (gateway, AI and core services
// in separate processes over RabbitMQ), with a fake upstream that has the edge cases of real providers: streams
// without a role on the first delta or with an opening chunk of no choices, keep-alive comments, tool-call arguments
// cut mid-JSON, usage in a chunk of its own, embeddings in a format nobody asked for, no Responses API.
import crypto from "crypto";
import OpenAI from "openai";
import { makeParseableResponseFormat } from "openai/lib/parser";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL, REDIS_URL } from "../helpers/infra";
import { deleteRabbitObjects } from "../helpers/rabbit";
import { startNode, TEST_JWT_SECRET } from "../helpers/process";
import { FakeOpenAI } from "../helpers/fake-openai";
import { freePorts } from "../helpers/ports";

let BASE = "";
const ask = (content: string) => [{ role: "user" as const, content }];

describeWith(["postgres", "rabbitmq", "redis"])("the openai SDK and its helpers through /v1", () => {
	const namespace = uniqueNamespace("ai-sdk");
	const up = new FakeOpenAI();
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let nodes: ReturnType<typeof startNode>[] = [];
	let client: OpenAI;
	let token = "";
	let org = "";

	async function api(method: string, path: string, body?: unknown) {
		const r = await fetch(`${BASE}${path}`, {
			method,
			headers: {
				authorization: `Bearer ${token}`,
				"x-organization-id": org,
				...(body ? { "content-type": "application/json" } : {})
			},
			body: body ? JSON.stringify(body) : undefined
		});
		return { status: r.status, body: await r.json() };
	}
	async function ok(method: string, path: string, body?: unknown) {
		const r = await api(method, path, body);
		if (r.status >= 400) throw new Error(`${method} ${path} -> ${r.status} ${JSON.stringify(r.body)}`);
		return r.body;
	}

	beforeAll(async () => {
		const [PORT] = await freePorts(1);
		BASE = `http://127.0.0.1:${PORT}`;
		const upstream = await up.start();
		db = await createTestDatabase();
		const env = {
			TRANSPORTER: AMQP_URL,
			CACHER: REDIS_URL,
			CHANNELS_URL: AMQP_URL,
			DATABASE_URL: db.url,
			NAMESPACE: namespace,
			JWT_SECRET: TEST_JWT_SECRET,
			TRANSIT_KEY: "ai-sdk-transit-key-0123456789abcdef",
			AI_LOG_BATCH_MS: "0"
		};
		nodes = [
			startNode({
				...env,
				SERVICES: "auth,secrets",
				MASTER_KEY: crypto.randomBytes(32).toString("base64"),
				NODE_ID: `${namespace}-core`
			}),
			startNode({ ...env, SERVICES: "ai", AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1", NODE_ID: `${namespace}-ai` }),
			startNode({ ...env, SERVICES: "gateway", PORT: String(PORT), NODE_ID: `${namespace}-gw` })
		];
		await Promise.all(nodes.map(n => n.ready));
		const deadline = Date.now() + 30_000;
		while (Date.now() < deadline) {
			const ready = await fetch(`${BASE}/api/health/ready`)
				.then(r => r.json())
				.catch(() => ({ services: [] }));
			const ai = await fetch(`${BASE}/api/ai/models`)
				.then(r => r.status)
				.catch(() => 0);
			if (ready.services?.includes("ai") && ready.services?.includes("secrets") && ai === 401) break;
			await new Promise(r => setTimeout(r, 250));
		}
		const owner = await (
			await fetch(`${BASE}/api/auth/register`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ email: "sdk@example.com", password: "correct horse battery", name: "SDK" })
			})
		).json();
		[token, org] = [owner.accessToken, owner.organization.id];
		const provider = await ok("POST", "/api/ai/providers", { name: "fake", base_url: upstream, timeout_ms: 5000 });
		const deploy = (name: string, provider_model: string, extra: object = {}) =>
			ok("POST", "/api/ai/deployments", { provider_id: provider.id, name, provider_model, ...extra });
		await deploy("gpt-sdk", "up-chat");
		await deploy("gpt-quirky", "up-quirky");
		await deploy("gpt-primary", "up-failing", { priority: 1 });
		await deploy("gpt-bare", "up-bare");
		// The preferred deployment lacks the Responses API, the other has it.
		await deploy("gpt-mixed", "up-bare", { priority: 1 });
		const second = await ok("POST", "/api/ai/providers", { name: "fake-2", base_url: upstream, timeout_ms: 5000 });
		await ok("POST", "/api/ai/deployments", {
			provider_id: second.id,
			name: "gpt-mixed",
			provider_model: "up-chat",
			priority: 2
		});
		await deploy("meta-llama/Llama-3.1-8B", "up-chat");
		await deploy("embed-float", "up-embed-float", { kind: "embedding" });
		await deploy("embed-b64", "up-embed-b64", { kind: "embedding" });
		await ok("POST", "/api/ai/fallback-chains", { model: "gpt-primary", fallbacks: ["gpt-sdk"] });
		up.set("up-quirky", { emptyChoicesChunk: true, noRole: true });
		up.set("up-failing", { status: 500 });
		up.set("up-bare", { noResponsesApi: true });
		up.set("up-embed-float", { embeddingFormat: "float" });
		up.set("up-embed-b64", { embeddingFormat: "base64" });
		const key = (await ok("POST", "/api/auth/api-keys", { name: "sdk" })).key;
		client = new OpenAI({ apiKey: key, baseURL: `${BASE}/v1`, maxRetries: 0 });
	}, 120_000);

	afterAll(async () => {
		await Promise.all(nodes.map(n => n.stop("SIGKILL")));
		await up.stop();
		await db?.drop();
		// Its channel queues too: RabbitMQ keeps files open for every queue left behind.
		await deleteRabbitObjects([namespace]).catch(() => undefined);
	});

	test("chat.completions.stream(): the helper works on an upstream that sends no role and an empty first chunk", async () => {
		const stream = client.chat.completions.stream({
			model: "gpt-quirky",
			messages: ask("helper please"),
			stream_options: { include_usage: true }
		});
		let text = "";
		stream.on("content", delta => (text += delta));
		const final = await stream.finalChatCompletion();
		expect(final.choices[0].message).toMatchObject({
			role: "assistant",
			content: "echo(up-quirky): helper please"
		});
		expect(final.choices[0].finish_reason).toBe("stop");
		expect(text).toBe("echo(up-quirky): helper please");
		expect(final.usage?.total_tokens).toBeGreaterThan(0);
	});

	test("every chunk of a stream has the same id, the usage chunk included; the first delta has the role", async () => {
		const chunks: any[] = [];
		const stream = await client.chat.completions.create({
			model: "gpt-quirky",
			messages: ask("same id for all"),
			stream: true,
			stream_options: { include_usage: true }
		});
		for await (const chunk of stream) chunks.push(chunk);
		expect(new Set(chunks.map(c => c.id)).size).toBe(1);
		expect(chunks[0].choices[0].delta.role).toBe("assistant");
		const usage = chunks.filter(c => c.usage);
		expect(usage).toHaveLength(1);
		expect(usage[0]).toMatchObject({ choices: [], model: "gpt-quirky" });
		expect(chunks.at(-1)).toBe(usage[0]);
		// The finish reason arrives on a chunk of its own, and is relayed.
		expect(chunks.some(c => c.choices[0]?.finish_reason === "stop")).toBe(true);
	});

	test("chat.completions.parse() with a JSON schema (structured outputs)", async () => {
		const schema = {
			type: "object",
			properties: {
				title: { type: "string" },
				score: { type: "integer" },
				tags: { type: "array", items: { type: "string" } }
			},
			required: ["title", "score", "tags"],
			additionalProperties: false
		};
		const format = makeParseableResponseFormat(
			{ type: "json_schema", json_schema: { name: "review", schema, strict: true } },
			content => JSON.parse(content) as { title: string; score: number; tags: string[] }
		);
		const r = await client.chat.completions.parse({
			model: "gpt-sdk",
			messages: ask("rate it"),
			response_format: format
		});
		expect(r.choices[0].message.parsed).toEqual({ title: "sample", score: 1, tags: ["sample"] });
		// The schema went upstream as it was sent.
		expect(up.requests.at(-1)!.body.response_format).toEqual({
			type: "json_schema",
			json_schema: { name: "review", schema, strict: true }
		});
	});

	test("tools: a tool call, and tool-call streaming with arguments split mid-JSON", async () => {
		const tools = [
			{
				type: "function" as const,
				function: {
					name: "search_code",
					parameters: {
						type: "object",
						properties: { query: { type: "string" }, index: { type: "integer" } }
					}
				}
			}
		];
		const r = await client.chat.completions.create({ model: "gpt-sdk", messages: ask("find main"), tools });
		const call = r.choices[0].message.tool_calls![0] as any;
		expect(r.choices[0].finish_reason).toBe("tool_calls");
		expect(JSON.parse(call.function.arguments)).toEqual({ query: "find main", index: 0 });

		const chunks: any[] = [];
		const stream = client.chat.completions.stream({ model: "gpt-sdk", messages: ask("find main"), tools });
		stream.on("chunk", c => chunks.push(c));
		const final = await stream.finalChatCompletion();
		const streamed = final.choices[0].message.tool_calls![0] as any;
		expect(streamed.function).toMatchObject({
			name: "search_code",
			arguments: call.function.arguments
		});
		const pieces = chunks.flatMap(c => c.choices[0]?.delta?.tool_calls ?? []);
		expect(pieces.length).toBeGreaterThan(2);
		expect(pieces.every((p: any) => p.index === 0)).toBe(true);
		expect(pieces.map((p: any) => p.function.arguments).join("")).toBe(call.function.arguments);

		// The tool's result goes back; the model answers in text.
		const after = await client.chat.completions.create({
			model: "gpt-sdk",
			tools,
			messages: [
				...ask("find main"),
				r.choices[0].message as any,
				{ role: "tool", tool_call_id: call.id, content: "src/main.ts" }
			]
		});
		expect(after.choices[0].message.content).toBe("echo(up-chat): find main");
	});

	test("n > 1: every choice with its index, streamed too", async () => {
		const r = await client.chat.completions.create({ model: "gpt-sdk", messages: ask("twice"), n: 2 });
		expect(r.choices.map(c => [c.index, c.message.content])).toEqual([
			[0, "echo(up-chat): twice"],
			[1, "(1) echo(up-chat): twice"]
		]);
		const final = await client.chat.completions
			.stream({ model: "gpt-sdk", messages: ask("twice"), n: 2 })
			.finalChatCompletion();
		expect(final.choices.map(c => [c.index, c.message.role, c.message.content, c.finish_reason])).toEqual([
			[0, "assistant", "echo(up-chat): twice", "stop"],
			[1, "assistant", "(1) echo(up-chat): twice", "stop"]
		]);
	});

	test("logprobs are passed through, plain and streamed", async () => {
		const r = await client.chat.completions.create({
			model: "gpt-sdk",
			messages: ask("odds"),
			logprobs: true,
			top_logprobs: 2
		});
		const content = r.choices[0].logprobs!.content!;
		expect(content.map(t => t.token).join("")).toBe("echo(up-chat): odds");
		expect(content[0].top_logprobs).toHaveLength(2);
		const final = await client.chat.completions
			.stream({ model: "gpt-sdk", messages: ask("odds"), logprobs: true, top_logprobs: 1 })
			.finalChatCompletion();
		expect(final.choices[0].logprobs!.content!.map(t => t.token).join("")).toBe("echo(up-chat): odds");
	});

	test("the answer names the model that served it and the path it took (body and x-coder-* headers)", async () => {
		const { data, response } = await client.chat.completions
			.create({ model: "gpt-primary", messages: ask("who answers?") })
			.withResponse();
		expect(data.model).toBe("gpt-sdk");
		expect((data as any).coder).toEqual({
			requested_model: "gpt-primary",
			served_model: "gpt-sdk",
			provider: "fake",
			fallback_path: ["gpt-primary@fake:server_error", "gpt-sdk@fake:ok"],
			cache_hit: false
		});
		expect(response.headers.get("x-coder-served-model")).toBe("gpt-sdk");
		expect(response.headers.get("x-coder-requested-model")).toBe("gpt-primary");
		expect(response.headers.get("x-coder-fallback-path")).toBe("gpt-primary@fake:server_error, gpt-sdk@fake:ok");

		const streamed = await client.chat.completions
			.create({ model: "gpt-primary", messages: ask("who streams?"), stream: true })
			.withResponse();
		expect(streamed.response.headers.get("x-coder-served-model")).toBe("gpt-sdk");
		expect(streamed.response.headers.get("x-coder-fallback-path")).toContain("gpt-primary@fake:server_error");
		const models = new Set<string>();
		for await (const chunk of streamed.data) models.add(chunk.model);
		expect([...models]).toEqual(["gpt-sdk"]);
	});

	test("GET /v1/models/{id}: OpenAI's shape, slashes in names included; an unknown id is a 404 in OpenAI's shape", async () => {
		expect(await client.models.retrieve("gpt-sdk")).toMatchObject({ id: "gpt-sdk", object: "model" });
		expect(await client.models.retrieve("meta-llama/Llama-3.1-8B")).toMatchObject({
			id: "meta-llama/Llama-3.1-8B"
		});
		await expect(client.models.retrieve("no-such-model")).rejects.toMatchObject({
			status: 404,
			code: "model_not_found",
			type: "invalid_request_error",
			param: "model"
		});
	});

	test("embeddings are right whatever format the upstream answers in, for every format the client asks", async () => {
		const want = [FakeOpenAI.vector("one"), FakeOpenAI.vector("two")];
		for (const model of ["embed-float", "embed-b64"]) {
			// The SDK asks for base64 and decodes it when the caller did not choose: it was [0,0] before.
			const sdk = await client.embeddings.create({ model, input: ["one", "two"] });
			expect(sdk.data.map(d => d.embedding)).toEqual(want);
			const floats = await client.embeddings.create({ model, input: ["one", "two"], encoding_format: "float" });
			expect(floats.data.map(d => d.embedding)).toEqual(want);
			const b64 = await client.embeddings.create({ model, input: "one", encoding_format: "base64" });
			const bytes = Buffer.from(b64.data[0].embedding as unknown as string, "base64");
			expect(Array.from(new Float32Array(new Uint8Array(bytes).buffer))).toEqual(want[0]);
			// A client that sends no encoding_format at all (curl, most HTTP clients) gets floats.
			const raw = await fetch(`${BASE}/v1/embeddings`, {
				method: "POST",
				headers: { authorization: `Bearer ${client.apiKey}`, "content-type": "application/json" },
				body: JSON.stringify({ model, input: "two" })
			}).then(r => r.json());
			expect(raw.data[0].embedding).toEqual(want[1]);
		}
	});

	test("the Responses API: relayed to an upstream that has it, plain and streamed; a clear 501 where not", async () => {
		const r = await client.responses.create({ model: "gpt-primary", input: "respond please" });
		expect(r.output_text).toBe("echo(up-chat): respond please");
		expect(r.model).toBe("gpt-sdk");
		expect(up.requests.at(-1)!.path).toBe("/v1/responses");

		const stream = await client.responses.create({ model: "gpt-sdk", input: "stream it", stream: true });
		const types: string[] = [];
		let text = "";
		let completed: any;
		for await (const event of stream) {
			types.push(event.type);
			if (event.type === "response.output_text.delta") text += event.delta;
			if (event.type === "response.completed") completed = event.response;
		}
		expect(text).toBe("echo(up-chat): stream it");
		expect(types[0]).toBe("response.created");
		expect(types.at(-1)).toBe("response.completed");
		expect(completed.usage.total_tokens).toBeGreaterThan(0);

		const helper = await client.responses.stream({ model: "gpt-sdk", input: "helper" }).finalResponse();
		expect(helper.output_text).toBe("echo(up-chat): helper");

		await expect(client.responses.create({ model: "gpt-bare", input: "x" })).rejects.toMatchObject({
			status: 501,
			type: "api_error",
			message: expect.stringContaining("does not offer the Responses API")
		});
		// A deployment without the API is skipped for one that has it, and is not cooled down for it.
		for (let i = 0; i < 4; i++) {
			const mixed = await client.responses.create({ model: "gpt-mixed", input: `mixed ${i}` });
			expect(mixed.output_text).toBe(`echo(up-chat): mixed ${i}`);
		}
		const chat = await client.chat.completions.create({ model: "gpt-mixed", messages: ask("still preferred") });
		expect(chat.choices[0].message.content).toBe("echo(up-bare): still preferred");
		const logs = await ok("GET", "/api/ai/logs?limit=500");
		expect(logs.rows.some((l: any) => l.requested_model === "gpt-sdk" && l.stream && l.status === "success")).toBe(
			true
		);
	});

	test("presets, routing rules and fallback chains name only real models; a preset takes a model over only on purpose", async () => {
		const preset = await api("POST", "/api/ai/presets", { name: "gpt-sdk", model: "gpt-quirky" });
		expect(preset.status).toBe(409);
		expect(preset.body.error.message).toContain('a deployment is named "gpt-sdk"');
		expect(preset.body.error.fields[0].field).toBe("name");
		const unknown = await api("POST", "/api/ai/presets", { name: "reviewer", model: "gpt-9" });
		expect(unknown.status).toBe(422);
		expect(unknown.body.error.fields[0]).toMatchObject({ field: "model" });
		expect(unknown.body.error.fields[0].message).toContain('unknown model "gpt-9"');
		const rule = await api("POST", "/api/ai/routing-rules", { model: "gpt-9", strategy: "cost" });
		expect([rule.status, rule.body.error.fields[0].field]).toEqual([422, "model"]);
		const chain = await api("POST", "/api/ai/fallback-chains", {
			model: "gpt-sdk",
			fallbacks: ["gpt-quirky", "gpt-9"]
		});
		expect([chain.status, chain.body.error.fields[0].field]).toEqual([422, "fallbacks[1]"]);
		const limit = await api("POST", "/api/ai/rate-limits", {
			scope: "model",
			model: "gpt-9",
			requests_per_minute: 5
		});
		expect([limit.status, limit.body.error.fields[0].field]).toEqual([422, "model"]);
		const bare = await api("POST", "/api/ai/rate-limits", { scope: "model", requests_per_minute: 5 });
		expect([bare.status, bare.body.error.fields[0].field]).toEqual([422, "model"]);
		expect((await ok("GET", "/api/ai/models")).map((m: any) => m.id)).not.toContain("gpt-9");

		// Explicitly: the preset takes over, and says so.
		const over = await ok("POST", "/api/ai/presets", {
			name: "gpt-sdk",
			model: "gpt-quirky",
			overrides_model: true
		});
		expect(over.overrides_model).toBe(true);
		try {
			await new Promise(r => setTimeout(r, 300)); // the AI replica drops its copy of the set-up (a broadcast)
			const r = await client.chat.completions.create({ model: "gpt-sdk", messages: ask("taken over") });
			expect(r.model).toBe("gpt-quirky");
			// Renaming it away from the deployment is fine; back onto it without the flag is not.
			const clear = await api("PATCH", `/api/ai/presets/${over.id}`, { overrides_model: false });
			expect(clear.status).toBe(409);
		} finally {
			await ok("DELETE", `/api/ai/presets/${over.id}`);
		}
	});
});
