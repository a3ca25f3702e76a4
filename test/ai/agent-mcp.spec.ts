// Agent runs with an MCP server's tools: the reference server `@modelcontextprotocol/server-everything` over stdio,
// registered through the mcp module, one of its tools marked as needing approval. The run pauses, persisted; the
// approval reaches a second platform process that never saw the run (another replica), which continues it.
import path from "path";
import { describeWith, createTestDatabase, uniqueNamespace, REDIS_URL } from "../helpers/infra";
import { startGateway, register, http, TestGateway, Member } from "../helpers/gateway";
import { AI_STACK } from "../helpers/ai";
import { ROOT } from "../helpers/broker";
import { ScriptedModel, toolResults } from "./agent-model";

const MCP_FILES = ["mcp", "servers", "tools", "executions"].map(s => `services/mcp/${s}.service.ts`);
const FILES = [
	...AI_STACK.filter(f => !f.startsWith("services/auth/")),
	"services/ai/agent-runs.service.ts",
	...MCP_FILES
];
const EVERYTHING = path.join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");

describeWith(["postgres", "redis"])("agent runs with MCP tools and approvals", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway, replica: TestGateway;
	let a: Member;
	const model = new ScriptedModel();
	const asA = () => ({ token: a.accessToken, org: a.organization.id });
	const start = (body: Record<string, unknown>) =>
		http(gw.port, "POST", "/api/ai/agent-runs", { ...asA(), body: { tool_sets: ["everything"], ...body } });
	const decide = (port: number, id: string, decisions: unknown[]) =>
		http(port, "POST", `/api/ai/agent-runs/${id}/decisions`, { ...asA(), body: { decisions } });

	beforeAll(async () => {
		const base = await model.start();
		db = await createTestDatabase();
		const env = {
			DATABASE_URL: db.url,
			NAMESPACE: uniqueNamespace("agent-mcp"),
			REDIS_URL,
			AI_LOG_BATCH_MS: "0",
			AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1"
		};
		gw = await startGateway(env, FILES);
		// A second platform process on the same database, not connected to the first: no run lives in its memory.
		replica = await startGateway(env, FILES);
		a = await register(gw.port, "agent-mcp@example.com");
		const provider = await http(gw.port, "POST", "/api/ai/providers", {
			...asA(),
			body: { name: "scripted", base_url: base }
		});
		for (const name of ["mcp-agent", "careful"])
			expect(
				(
					await http(gw.port, "POST", "/api/ai/deployments", {
						...asA(),
						body: { provider_id: provider.body.id, name, provider_model: name }
					})
				).status
			).toBe(200);
		const server = await http(gw.port, "POST", "/api/mcp/servers", {
			...asA(),
			body: { name: "everything", transport: "stdio", command: process.execPath, args: [EVERYTHING, "stdio"] }
		});
		expect(server.status).toBe(200);
		const tools = await http(
			gw.port,
			"GET",
			`/api/mcp/tools?pageSize=100&query=${encodeURIComponent(JSON.stringify({ server_id: server.body.id }))}`,
			asA()
		);
		const echo = tools.body.rows.find((t: any) => t.name === "echo");
		expect(echo).toBeDefined();
		const marked = await http(gw.port, "PATCH", `/api/mcp/tools/${echo.id}`, {
			...asA(),
			body: { requires_approval: true }
		});
		expect(marked.status).toBe(200);
	}, 90_000);

	afterAll(async () => {
		await replica?.stop();
		await gw?.stop();
		await model.stop();
		await db?.drop();
	});

	test("pauses for approval, and the approval on another replica resumes it to the end", async () => {
		model.script("mcp-agent", (body, turn) =>
			turn === 1
				? {
						calls: [
							{ name: "everything__get-sum", arguments: { a: 2, b: 3 } },
							{ name: "everything__echo", arguments: { message: "hello from the agent" } }
						]
					}
				: { content: `results: ${toolResults(body).join(" | ")}` }
		);
		const paused = await start({ model: "mcp-agent", prompt: "add 2 and 3, then say hello" });
		expect(paused.status).toBe(200);
		expect(paused.body.status).toBe("awaiting_approval");
		const [turn, sum, echo] = paused.body.steps;
		expect(turn.kind).toBe("model");
		expect([sum.tool, sum.server, sum.status]).toEqual(["get-sum", "everything", "completed"]);
		expect(JSON.stringify(sum.result)).toMatch(/5/);
		expect([echo.tool, echo.status]).toEqual(["echo", "awaiting_approval"]);
		expect(model.requests.filter(r => r.model === "mcp-agent")).toHaveLength(1);

		const done = await decide(replica.port, paused.body.id, [{ step_id: echo.id, approve: true }]);
		expect(done.status).toBe(200);
		expect(done.body.status).toBe("completed");
		const echoed = done.body.steps.find((s: any) => s.id === echo.id);
		expect(echoed.status).toBe("completed");
		expect(echoed.decided_by).toBe(a.user.id);
		expect(done.body.output).toMatch(/5/);
		expect(done.body.output).toMatch(/hello from the agent/);
		// Both calls are in the mcp module's execution log.
		const executions = await http(gw.port, "GET", "/api/mcp/executions?pageSize=50", asA());
		expect(executions.body.rows.map((e: any) => e.tool).sort()).toEqual(
			expect.arrayContaining(["echo", "get-sum"])
		);
		// Decided once: a second decision is refused.
		expect((await decide(gw.port, paused.body.id, [{ step_id: echo.id, approve: true }])).status).toBe(409);
	});

	test("a rejection goes back to the model as the tool's result", async () => {
		model.script("careful", (body, turn) =>
			turn === 1
				? { calls: [{ name: "everything__echo", arguments: { message: "secret plan" } }] }
				: { content: `could not: ${toolResults(body).join(" | ")}` }
		);
		const paused = await start({ model: "careful", prompt: "echo the plan" });
		expect(paused.body.status).toBe("awaiting_approval");
		const echo = paused.body.steps.find((s: any) => s.kind === "tool");
		const done = await decide(gw.port, paused.body.id, [{ step_id: echo.id, approve: false, reason: "not now" }]);
		expect(done.body.status).toBe("completed");
		expect(done.body.steps.find((s: any) => s.id === echo.id).status).toBe("rejected");
		expect(done.body.output).toBe("could not: rejected by a person: not now");
	});

	test("a run awaiting approval can be cancelled; a decision then is refused", async () => {
		model.script("careful", () => ({ calls: [{ name: "everything__echo", arguments: { message: "x" } }] }));
		const paused = await start({ model: "careful", prompt: "echo" });
		expect(paused.body.status).toBe("awaiting_approval");
		const cancelled = await http(gw.port, "POST", `/api/ai/agent-runs/${paused.body.id}/cancel`, asA());
		expect(cancelled.body.status).toBe("cancelled");
		const run = await http(gw.port, "GET", `/api/ai/agent-runs/${paused.body.id}`, asA());
		expect(run.body.steps.find((s: any) => s.kind === "tool").status).toBe("cancelled");
		const echo = paused.body.steps.find((s: any) => s.kind === "tool");
		expect((await decide(gw.port, paused.body.id, [{ step_id: echo.id, approve: true }])).status).toBe(409);
	});

	test("an unknown MCP server as a tool-set is a 4xx naming it", async () => {
		const r = await start({ model: "careful", prompt: "x", tool_sets: ["nowhere"] });
		expect(r.status).toBe(404);
		expect(r.body.error.message).toMatch(/nowhere/);
	});
});
