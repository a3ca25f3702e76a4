// execution's MCP step: a tool of the organization's MCP server (an HTTP server in the test, reached through the
// platform's egress rules) is called as the execution-runs service for the organization; the step's output is the
// tool's answer. A tool the server does not have fails the step at once (a 4xx is not retried).
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { runPlan as run } from "../helpers/planning";
import { MCP_STACK } from "../mcp/stack";
import { TestMcpHttpServer } from "../mcp/http-server";
import type { AuthInfo } from "../../lib/permissions";

jest.setTimeout(90_000);
const TOKEN = "tok-exec-5d1c";

describeWith(["postgres"])("execution: MCP tool call steps", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let owner: AuthInfo;
	const mcp = new TestMcpHttpServer(TOKEN);
	const call = (action: string, params: object): Promise<any> => t.broker.call(action, params, as(owner));
	const runPlan = (title: string, steps: object[]) => run(call, title, steps);

	beforeAll(async () => {
		await mcp.start();
		db = await createTestDatabase();
		t = await createTestBroker(
			{
				DATABASE_URL: db.url,
				MCP_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
				MCP_HEALTH_INTERVAL_MS: "0",
				MCP_REFRESH_INTERVAL_MS: "0"
			},
			[...MCP_STACK, "services/planning/plans.service.ts", "services/execution/runs.service.ts"]
		);
		const o: any = await t.broker.call("auth.register", {
			email: "exec-mcp@example.com",
			password: "correct horse battery",
			name: "O"
		});
		owner = await t.broker.call("auth.resolve", { token: o.accessToken, organizationId: o.organization.id });
		await call("secrets.create", { environment: "production", name: "MCP_TOKEN", value: `Bearer ${TOKEN}` });
		await call("mcp-servers.create", {
			name: "calc",
			transport: "http",
			url: `${mcp.url}/mcp`,
			headers: { Authorization: { secret: "MCP_TOKEN" } }
		});
	}, 90_000);

	afterAll(async () => {
		await t?.stop();
		await mcp.stop();
		await db?.drop();
	});

	test("a tool call step calls the tool as the service for the organization; its answer is kept", async () => {
		const before = mcp.calls;
		const d = await runPlan("MCP plan", [
			{ kind: "mcp_tool_call", title: "add", config: { server: "calc", tool: "add", arguments: { a: 2, b: 3 } } }
		]);
		expect(d.run).toMatchObject({ status: "completed", outcome: "succeeded" });
		expect(JSON.stringify(d.steps[0].output)).toContain('"sum":5');
		expect(mcp.calls).toBe(before + 1);
		// The step sent its key: the same call sent again (its replica died before recording the answer) is not made
		// again, and the first answer comes back.
		const again = await call("mcp.call", {
			server: "calc",
			tool: "add",
			arguments: { a: 2, b: 3 },
			idempotency_key: `${d.run.id}:0`
		});
		expect(again).toEqual(d.steps[0].output);
		expect(mcp.calls).toBe(before + 1);
	});

	test("a tool call asked again with one idempotency key is made once", async () => {
		const before = mcp.calls;
		const params = { server: "calc", tool: "add", arguments: { a: 1, b: 1 }, idempotency_key: "k-mcp" };
		const first = await call("mcp.call", params);
		expect(await call("mcp.call", params)).toEqual(first);
		expect(mcp.calls).toBe(before + 1);
		// Without a key, each call is made.
		await call("mcp.call", { ...params, idempotency_key: undefined });
		expect(mcp.calls).toBe(before + 2);
	});

	test("a tool the server does not have fails the step at once", async () => {
		const d = await runPlan("Missing tool", [
			{ kind: "mcp_tool_call", title: "x", config: { server: "calc", tool: "nope" } }
		]);
		expect(d.steps[0]).toMatchObject({ status: "failed", attempts: 1 });
		expect(d.steps[0].error).toMatch(/nope/);
	});
});
