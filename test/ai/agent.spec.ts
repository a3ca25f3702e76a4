// Agent runs against a scripted model (a local OpenAI-compatible server answering with tool calls) and the
// platform's own tools, through the real gateway: REST, the socket's stream and cancel, real PostgreSQL.
import crypto from "crypto";
import pg from "pg";
import OpenAI from "openai";
import type { Socket } from "socket.io-client";
import { describeWith, createTestDatabase, uniqueNamespace, REDIS_URL } from "../helpers/infra";
import { startGateway, register, http, connect, TestGateway, Member } from "../helpers/gateway";
import { waitUntil } from "../helpers/wait";
import { AI_STACK } from "../helpers/ai";
import { cachedOf, promptTokensOf, ScriptedModel, toolResults } from "./agent-model";

const FILES = [
	...AI_STACK.filter(f => !f.startsWith("services/auth/")),
	"services/ai/agent-runs.service.ts",
	// planning_task_create, a platform tool that writes.
	"services/planning/states.service.ts",
	"services/planning/entities.service.ts"
];
const SECRETS = "platform__secret_names";

describeWith(["postgres", "redis"])("agent runs", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	let a: Member, b: Member;
	const model = new ScriptedModel();
	const asA = () => ({ token: a.accessToken, org: a.organization.id });
	const asB = () => ({ token: b.accessToken, org: b.organization.id });
	const start = (body: Record<string, unknown>) =>
		http(gw.port, "POST", "/api/ai/agent-runs", { ...asA(), body: { tool_sets: ["platform"], ...body } });
	let client: pg.Client;
	const sql = (q: string, p: unknown[] = []) => client.query(q, p);

	beforeAll(async () => {
		const base = await model.start();
		db = await createTestDatabase();
		client = new pg.Client({ connectionString: db.url });
		await client.connect();
		gw = await startGateway(
			{
				DATABASE_URL: db.url,
				NAMESPACE: uniqueNamespace("agent"),
				REDIS_URL,
				AI_LOG_BATCH_MS: "0",
				AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1"
			},
			FILES
		);
		a = await register(gw.port, "agent-a@example.com");
		b = await register(gw.port, "agent-b@example.com");
		const provider = await http(gw.port, "POST", "/api/ai/providers", {
			...asA(),
			body: { name: "scripted", base_url: base }
		});
		expect(provider.status).toBe(200);
		for (const name of ["planner", "looper", "slow", "streamer"])
			expect(
				(
					await http(gw.port, "POST", "/api/ai/deployments", {
						...asA(),
						body: {
							provider_id: provider.body.id,
							name,
							provider_model: name,
							input_price: 1,
							output_price: 2
						}
					})
				).status
			).toBe(200);
		for (const [environment, name] of [
			["production", "OPENAI_API_KEY"],
			["staging", "STAGING_DB_URL"]
		])
			expect(
				(
					await http(gw.port, "POST", "/api/secrets", {
						...asA(),
						body: { environment, name, value: `never-shown-${name}` }
					})
				).status
			).toBe(200);
	}, 60_000);

	afterAll(async () => {
		await gw?.stop();
		await client?.end();
		await model.stop();
		await db?.drop();
	});

	test("completes a multi-step task: a tool, then two in parallel, then the answer; every step logged", async () => {
		model.script("planner", (body, turn) => {
			if (turn === 1) return { calls: [{ name: SECRETS, arguments: {} }] };
			if (turn === 2)
				return {
					calls: [
						{ name: SECRETS, arguments: { environment: "production" } },
						{ name: SECRETS, arguments: { environment: "staging" } }
					]
				};
			return { content: `summary: ${toolResults(body).join(" | ")}` };
		});
		const r = await start({ model: "planner", prompt: "Which secrets do we have per environment?" });
		expect(r.status).toBe(200);
		expect(r.body.status).toBe("completed");
		expect(r.body.steps.map((s: any) => `${s.kind}:${s.status}`)).toEqual([
			"model:completed",
			"tool:completed",
			"model:completed",
			"tool:completed",
			"tool:completed",
			"model:completed"
		]);
		// The parallel calls' results went back to the model in the calls' order, values never.
		const third = model.requests.filter(q => q.model === "planner")[2];
		const results = third.messages.filter((m: any) => m.role === "tool");
		expect(results.map((m: any) => m.tool_call_id)).toEqual(["call_1_0", "call_2_0", "call_2_1"]);
		expect(results[1].content).toContain("OPENAI_API_KEY");
		expect(results[1].content).not.toContain("STAGING_DB_URL");
		expect(results[2].content).toContain("STAGING_DB_URL");
		expect(r.body.output).toContain("OPENAI_API_KEY");
		expect(JSON.stringify(r.body)).not.toContain("never-shown");
		expect(third.tools.map((t: any) => t.function.name)).toContain(SECRETS);
		// One run, its three model turns in the completion log, its tokens and cost summed from them.
		expect(r.body.steps).toHaveLength(6);
		const logs = await sql(
			"SELECT prompt_tokens + completion_tokens AS tokens, cost FROM ai_completion_logs WHERE request_id LIKE $1",
			[`agent-${r.body.id}-%`]
		);
		expect(logs.rows).toHaveLength(3);
		expect(r.body.steps).toHaveLength(6);
		expect(r.body.tokens).toBe(logs.rows.reduce((n: number, l: any) => n + Number(l.tokens), 0));
		expect(r.body.cost).toBeCloseTo(
			logs.rows.reduce((n: number, l: any) => n + Number(l.cost), 0),
			9
		);
		const got = await http(gw.port, "GET", `/api/ai/agent-runs/${r.body.id}`, asA());
		expect(got.body.steps.map((s: any) => s.id)).toEqual(r.body.steps.map((s: any) => s.id));
		const list = await http(gw.port, "GET", "/api/ai/agent-runs", asA());
		expect(list.body.map((x: any) => x.id)).toContain(r.body.id);
		// Another organization sees none of it.
		expect((await http(gw.port, "GET", `/api/ai/agent-runs/${r.body.id}`, asB())).status).toBe(404);
		expect((await http(gw.port, "GET", "/api/ai/agent-runs", asB())).body).toEqual([]);
	});

	test("stops at its step limit", async () => {
		model.script("looper", () => ({ calls: [{ name: SECRETS, arguments: {} }] }));
		const before = model.requests.length;
		const r = await start({ model: "looper", prompt: "loop forever", max_steps: 3 });
		expect(r.body.status).toBe("step_limit");
		expect(r.body.error).toMatch(/step limit \(3\)/);
		expect(r.body.steps.filter((s: any) => s.kind === "model")).toHaveLength(3);
		expect(model.requests.length - before).toBe(3);
	});

	test("respects its token budget", async () => {
		model.script("looper", () => ({ calls: [{ name: SECRETS, arguments: {} }] }));
		const before = model.requests.length;
		const r = await start({ model: "looper", prompt: "spend", max_tokens: 10 });
		expect(r.body.status).toBe("budget_exceeded");
		expect(r.body.error).toMatch(/token budget used: \d+ of 10/);
		expect(model.requests.length - before).toBe(1);
		expect(r.body.tokens).toBeGreaterThanOrEqual(10);
	});

	test("is cancelled through the API while a model turn is in progress", async () => {
		model.script("slow", () => ({ content: "too late" }));
		model.holding.add("slow");
		try {
			const running = start({ model: "slow", prompt: "take your time" });
			await waitUntil(
				"the turn to reach the model",
				async () => model.waiting(),
				n => n === 1
			);
			const [run] = (await http(gw.port, "GET", "/api/ai/agent-runs?status=running", asA())).body;
			expect(run.model).toBe("slow");
			expect((await http(gw.port, "POST", `/api/ai/agent-runs/${run.id}/cancel`, asB())).status).toBe(404);
			const cancelled = await http(gw.port, "POST", `/api/ai/agent-runs/${run.id}/cancel`, asA());
			expect(cancelled.status).toBe(200);
			expect(cancelled.body.status).toBe("cancelled");
			const answered = await running;
			expect(answered.body.status).toBe("cancelled");
			expect(answered.body.output).toBeNull();
			// Cancelled again: it is over already.
			expect((await http(gw.port, "POST", `/api/ai/agent-runs/${run.id}/cancel`, asA())).status).toBe(409);
		} finally {
			model.holding.delete("slow");
			model.release();
		}
	});

	test("streams every step over the socket, and the socket's cancel stops the run", async () => {
		const socket: Socket = await connect(gw.port, { token: a.accessToken, organizationId: a.organization.id });
		try {
			model.script("streamer", (body, turn) =>
				turn === 1 ? { calls: [{ name: SECRETS, arguments: {} }] } : { content: "done" }
			);
			const items: any[] = [];
			socket.on("stream:data", ({ id, data }) => id === "run-1" && items.push(data));
			const ended = new Promise(r => socket.once("stream:end", r));
			const ack: any = await new Promise(r =>
				socket.emit(
					"stream",
					{
						id: "run-1",
						action: "ai-agent-runs.start",
						params: { model: "streamer", prompt: "go", tool_sets: ["platform"], stream: true }
					},
					r
				)
			);
			expect(ack.data).toEqual({ id: "run-1" });
			await ended;
			expect(
				items.map(i => (i.type === "run" ? `run:${i.run.status}` : `${i.step.kind}:${i.step.status}`))
			).toEqual([
				"run:running",
				"model:completed",
				"tool:running",
				"tool:completed",
				"model:completed",
				"run:completed"
			]);

			// A run held in its first turn, cancelled from the socket.
			model.script("slow", () => ({ content: "too late" }));
			model.holding.add("slow");
			const seen: any[] = [];
			socket.on("stream:data", ({ id, data }) => id === "run-2" && seen.push(data));
			socket.emit(
				"stream",
				{ id: "run-2", action: "ai-agent-runs.start", params: { model: "slow", prompt: "wait", stream: true } },
				() => undefined
			);
			await waitUntil(
				"the turn to reach the model",
				async () => model.waiting(),
				n => n === 1
			);
			const runId = seen[0].run.id;
			await new Promise(r => socket.emit("cancel", { id: "run-2" }, r));
			const run = await waitUntil(
				"the run to be cancelled",
				async () => (await http(gw.port, "GET", `/api/ai/agent-runs/${runId}`, asA())).body,
				r => r.status === "cancelled"
			);
			expect(run.steps).toEqual([]);
		} finally {
			model.holding.delete("slow");
			model.release();
			socket.close();
		}
	});

	test("/v1/chat/completions runs the tools of named tool-sets on the server, whole or streamed", async () => {
		const key = (await http(gw.port, "POST", "/api/auth/api-keys", { ...asA(), body: { name: "sdk" } })).body.key;
		const client = new OpenAI({ apiKey: key, baseURL: `http://127.0.0.1:${gw.port}/v1`, maxRetries: 0 });
		model.script("planner", (body, turn) =>
			turn === 1 ? { calls: [{ name: SECRETS, arguments: {} }] } : { content: `v1: ${toolResults(body).at(-1)}` }
		);
		const request = {
			model: "planner",
			messages: [{ role: "user" as const, content: "our secrets?" }],
			tool_sets: ["platform"],
			agent: { max_steps: 5 }
		};
		const asked = model.requests.length;
		const answer: any = await client.chat.completions.create(request as any);
		expect(answer.choices[0].finish_reason).toBe("stop");
		// The usage object sums the run's turns: prompt (cached among them) and completion tokens, as OpenAI tells them.
		const turns = model.requests.slice(asked);
		expect(turns).toHaveLength(2);
		const prompt = turns.reduce((n, q) => n + promptTokensOf(q), 0);
		expect(answer.usage.prompt_tokens).toBe(prompt);
		expect(answer.usage.prompt_tokens_details.cached_tokens).toBe(
			turns.reduce((n, q) => n + cachedOf(promptTokensOf(q)), 0)
		);
		expect(answer.usage.completion_tokens).toBeGreaterThan(0);
		expect(answer.usage.total_tokens).toBe(prompt + answer.usage.completion_tokens);
		expect(answer.choices[0].message.content).toMatch(/^v1: .*OPENAI_API_KEY/);
		expect(answer.coder.agent_run.status).toBe("completed");
		const run = await http(gw.port, "GET", `/api/ai/agent-runs/${answer.coder.agent_run.id}`, asA());
		expect(run.body.steps.map((s: any) => s.kind)).toEqual(["model", "tool", "model"]);
		expect(run.body.api_key_id).not.toBeNull();

		model.script("planner", (body, turn) =>
			turn === 1 ? { calls: [{ name: SECRETS, arguments: {} }] } : { content: "streamed answer" }
		);
		const stream = await client.chat.completions.create({
			...request,
			stream: true,
			stream_options: { include_usage: true }
		} as any);
		let text = "";
		const steps: string[] = [];
		let usage: any;
		for await (const chunk of stream as any) {
			if (chunk.coder?.agent_step) steps.push(`${chunk.coder.agent_step.kind}:${chunk.coder.agent_step.status}`);
			text += chunk.choices[0]?.delta?.content ?? "";
			usage = chunk.usage ?? usage;
		}
		expect(text).toBe("streamed answer");
		expect(usage.prompt_tokens).toBeGreaterThan(0);
		expect(usage.completion_tokens).toBeGreaterThan(0);
		expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
		expect(steps).toEqual(["model:completed", "tool:running", "tool:completed", "model:completed"]);

		// The client's own tools and server-side tool-sets do not mix.
		const mixed = await http(gw.port, "POST", "/v1/chat/completions", {
			token: key,
			body: { ...request, tools: [{ type: "function", function: { name: "x", parameters: {} } }] }
		});
		expect(mixed.status).toBe(400);
		expect(mixed.body.error.param).toBe("tools");
	});

	test("a platform tool that writes (planning_task_create) waits for a person's approval, then runs", async () => {
		const tasks = async () =>
			(await sql("SELECT count(*)::int AS n FROM planning_entities WHERE title = 'Rotate the keys'")).rows[0].n;
		model.script("planner", (body, turn) =>
			turn === 1
				? { calls: [{ name: "platform__planning_task_create", arguments: { title: "Rotate the keys" } }] }
				: { content: `made: ${toolResults(body).join(" | ")}` }
		);
		const paused = await start({ model: "planner", prompt: "Make a task to rotate the keys" });
		expect(paused.status).toBe(200);
		expect(paused.body.status).toBe("awaiting_approval");
		const create = paused.body.steps.find((s: any) => s.kind === "tool");
		expect([create.tool, create.status]).toEqual(["planning_task_create", "awaiting_approval"]);
		expect(await tasks()).toBe(0);

		const done = await http(gw.port, "POST", `/api/ai/agent-runs/${paused.body.id}/decisions`, {
			...asA(),
			body: { decisions: [{ step_id: create.id, approve: true }] }
		});
		expect(done.status).toBe(200);
		expect(done.body.status).toBe("completed");
		expect(done.body.steps.find((s: any) => s.id === create.id).status).toBe("completed");
		expect(await tasks()).toBe(1);
	});

	test("bad input is a 4xx naming the field", async () => {
		const none = await start({ model: "planner" });
		expect(none.status).toBe(422);
		expect(none.body.error.fields[0].field).toBe("prompt");
		const steps = await start({ model: "planner", prompt: "x", max_steps: 0 });
		expect(steps.status).toBe(422);
		expect(steps.body.error.fields[0].field).toBe("max_steps");
		// Without the mcp module, a tool-set other than "platform" cannot be served.
		const mcp = await start({ model: "planner", prompt: "x", tool_sets: ["everything"] });
		expect(mcp.status).toBe(503);
		expect(mcp.body.error.message).toMatch(/mcp module is not running/);
		const decide = await http(gw.port, "POST", `/api/ai/agent-runs/${crypto.randomUUID()}/decisions`, {
			...asA(),
			body: { decisions: [{ step_id: crypto.randomUUID(), approve: true }] }
		});
		expect(decide.status).toBe(404);
	});
});
