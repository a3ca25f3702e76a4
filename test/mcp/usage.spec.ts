// The usage module meters MCP tool executions (mcp.events, consumer group "usage") as tool calls of kind "tool".
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { waitUntil } from "../helpers/wait";
import { MCP_STACK, TINY } from "./stack";

describeWith(["postgres"])("usage meters MCP tool executions", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	let sql: pg.Client;
	let auth: any;

	beforeAll(async () => {
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		const t = await createTestBroker(
			{
				DATABASE_URL: db.url,
				CHANNELS_RETRY_BASE_MS: "10",
				MCP_HEALTH_INTERVAL_MS: "0",
				MCP_REFRESH_INTERVAL_MS: "0"
			},
			[...MCP_STACK, "services/usage/usage.service.ts"]
		);
		broker = t.broker;
		stop = t.stop;
		const owner: any = await broker.call("auth.register", {
			email: "mcp-usage@example.com",
			password: "correct horse battery",
			name: "Owner"
		});
		auth = await broker.call("auth.resolve", { token: owner.accessToken, organizationId: owner.organization.id });
	});

	afterAll(async () => {
		await stop?.();
		await sql?.end();
		await db?.drop();
	});

	test("completed and failed executions are tool calls, not model requests", async () => {
		const call = (action: string, params: any) => broker.call<any, any>(action, params, as(auth));
		await call("mcp-servers.create", { name: "tiny", transport: "stdio", command: process.execPath, args: [TINY] });
		await call("mcp.call", { server: "tiny", tool: "echo", arguments: { message: "a" } });
		await call("mcp.call", { server: "tiny", tool: "echo", arguments: { message: "b" } });
		// The tiny server exits on { crash: true }: the call fails.
		await expect(
			call("mcp.call", { server: "tiny", tool: "echo", arguments: { message: "c", crash: true } })
		).rejects.toMatchObject({ code: 502 });
		const rows = await waitUntil(
			"three metered tool calls",
			async () =>
				(
					await sql.query(
						"SELECT kind, model, status, tool_calls, service, user_id FROM usage_events WHERE organization_id = $1 ORDER BY status",
						[auth.organizationId]
					)
				).rows,
			r => r.length === 3
		);
		expect(rows.map(r => [r.kind, r.model, r.status, r.tool_calls, r.service])).toEqual([
			["tool", "mcp:tiny/echo", "error", 1, "mcp"],
			["tool", "mcp:tiny/echo", "success", 1, "mcp"],
			["tool", "mcp:tiny/echo", "success", 1, "mcp"]
		]);
		expect(rows[0].user_id).toBe(auth.userId);
		const agg = (
			await sql.query(
				"SELECT sum(tool_calls)::int AS tools, sum(requests)::int AS requests FROM usage_aggregates_daily WHERE organization_id = $1",
				[auth.organizationId]
			)
		).rows[0];
		expect(agg).toEqual({ tools: 3, requests: 0 });
	});
});
