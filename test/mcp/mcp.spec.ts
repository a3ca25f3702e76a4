// The mcp module in one process against real PostgreSQL, with real MCP servers: the reference servers from npm
// (server-everything, server-filesystem) over stdio, a tiny stdio server, and an HTTP server built with the SDK on
// 127.0.0.1 (Streamable HTTP and the older HTTP+SSE).
import { execFileSync } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { waitUntil } from "../helpers/wait";
import { groupAlive } from "../../services/mcp/stdio";
import { organizationSql } from "../../lib/db/tenant";
import type { McpThis } from "../../services/mcp/mcp.service";
import { TestMcpHttpServer } from "./http-server";
import { BIN, MCP_STACK, TINY } from "./stack";

jest.setTimeout(120_000);

const TOKEN = "tok-7f3a9c2e51d84b06";

// Processes whose parent is this one (stdio servers are our children until reaped).
function ps(args: string[]): string {
	try {
		return execFileSync("ps", args, { encoding: "utf8" });
	} catch {
		return "";
	}
}
const childPids = () =>
	ps(["-o", "pid=,comm=", "--ppid", String(process.pid)])
		.split("\n")
		.map(l => l.trim())
		.filter(l => l && !/\bps$/.test(l))
		.map(l => Number(l.split(/\s+/)[0]));
const pgidOf = (pid: number) => Number(ps(["-o", "pgid=", "-p", String(pid)]).trim());

describeWith(["postgres"])("mcp (in-process broker, real PostgreSQL, real MCP servers)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	let sql: pg.Client;
	const http = new TestMcpHttpServer(TOKEN);
	let owner: any, auth: any, otherAuth: any;
	const progress: any[] = [];

	const call = (action: string, params: any = {}, who = auth, opts: any = {}) =>
		broker.call<any, any>(action, params, { ...as(who), ...opts });
	const svc = () => broker.getLocalService("mcp") as unknown as McpThis;
	const outbox = async (type: string) =>
		(
			await sql.query("SELECT payload FROM outbox WHERE payload->>'type' = $1 ORDER BY created_at", [type])
		).rows.map(r => r.payload);

	beforeAll(async () => {
		await http.start();
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		const t = await createTestBroker(
			{
				DATABASE_URL: db.url,
				MCP_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
				MCP_HEALTH_INTERVAL_MS: "0",
				MCP_REFRESH_INTERVAL_MS: "0",
				MCP_HEALTH_FAILURES: "2",
				MCP_HEALTH_RECOVERIES: "2",
				MCP_MAX_RESULT_BYTES: "100000",
				CHANNELS_RETRY_BASE_MS: "10"
			},
			MCP_STACK
		);
		broker = t.broker;
		stop = t.stop;
		broker.createService({
			name: "progress-watcher",
			events: {
				"mcp.progress"(ctx: any) {
					progress.push(ctx.params);
				}
			}
		});
		owner = await broker.call("auth.register", {
			email: "mcp-owner@example.com",
			password: "correct horse battery",
			name: "Owner"
		});
		auth = await broker.call("auth.resolve", { token: owner.accessToken, organizationId: owner.organization.id });
		const other: any = await broker.call("auth.register", {
			email: "mcp-other@example.com",
			password: "correct horse battery",
			name: "Other"
		});
		otherAuth = await broker.call("auth.resolve", {
			token: other.accessToken,
			organizationId: other.organization.id
		});
		await call("secrets.create", { environment: "production", name: "MCP_TOKEN", value: `Bearer ${TOKEN}` });
		await call("secrets.create", { environment: "production", name: "EVERYTHING_KEY", value: "ev-secret-91c2d7" });
	});

	afterAll(async () => {
		await stop?.();
		await sql?.end();
		await db?.drop();
		await http.stop();
	});

	let httpServer: any;

	describe("Streamable HTTP", () => {
		test("registering discovers tools with their schemas; a credential typed into a header is refused", async () => {
			await expect(
				call("mcp-servers.create", {
					name: "typed",
					transport: "http",
					url: `${http.url}/mcp`,
					headers: { Authorization: "Bearer typed" }
				})
			).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "headers" })] });
			httpServer = await call("mcp-servers.create", {
				name: "calc",
				transport: "http",
				url: `${http.url}/mcp`,
				headers: { Authorization: { secret: "MCP_TOKEN" } }
			});
			expect(httpServer).toMatchObject({ transport: "http", last_error: null });
			expect(httpServer.discovered_at).toBeTruthy();
			const tools = await call("mcp-tools.list", { query: { server_id: httpServer.id }, pageSize: 100 });
			const add = tools.rows.find((t: any) => t.name === "add");
			expect(add.input_schema).toMatchObject({ type: "object", properties: { a: { type: "number" } } });
			expect(add.output_schema).toMatchObject({ properties: { sum: { type: "number" } } });
			expect(await outbox("mcp.server.registered")).toEqual([
				expect.objectContaining({ serverId: httpServer.id, serverName: "calc", transport: "http" })
			]);
			// Another organization does not see it.
			await expect(call("mcp-servers.get", { id: httpServer.id }, otherAuth)).rejects.toMatchObject({
				code: 404
			});
			await expect(
				call("mcp.call", { server: "calc", tool: "add", arguments: { a: 1, b: 2 } }, otherAuth)
			).rejects.toMatchObject({ code: 404 });
		});

		test("a call returns content and structured content; the log and its events hold no secret", async () => {
			const r = await call("mcp.call", { server: "calc", tool: "add", arguments: { a: 2, b: 3 } });
			expect(r).toMatchObject({
				is_error: false,
				content: [{ type: "text", text: "5" }],
				structured_content: { sum: 5 }
			});
			const who = await call("mcp.call", { server: httpServer.id, tool: "whoami" });
			expect(who.content[0].text).toContain(TOKEN);
			await svc().flush();
			const rows = (
				await sql.query("SELECT * FROM mcp_executions WHERE id = ANY($1)", [[r.execution_id, who.execution_id]])
			).rows;
			expect(rows.map(x => x.outcome).sort()).toEqual(["completed", "completed"]);
			const logged = rows.find(x => x.id === who.execution_id);
			expect(JSON.stringify(logged.result)).toContain("[redacted]");
			expect(JSON.stringify(rows)).not.toContain(TOKEN);
			const completed = await outbox("mcp.tool.execution.completed");
			expect(completed.map(e => e.executionId)).toEqual(
				expect.arrayContaining([r.execution_id, who.execution_id])
			);
			expect(JSON.stringify(await outbox("mcp.tool.execution.started"))).not.toContain(TOKEN);
			expect(completed[0]).toMatchObject({ userId: auth.userId, serverName: "calc", tool: "add" });
		});

		test("arguments are checked against the input schema: a 422 naming the field; unknown tools are 404", async () => {
			await expect(call("mcp.call", { server: "calc", tool: "add", arguments: { a: 1 } })).rejects.toMatchObject({
				code: 422,
				data: [expect.objectContaining({ field: "arguments.b" })]
			});
			await expect(
				call("mcp.call", { server: "calc", tool: "add", arguments: { a: 1, b: "two" } })
			).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "arguments.b" })] });
			await expect(call("mcp.call", { server: "calc", tool: "nope" })).rejects.toMatchObject({ code: 404 });
		});

		test("an answer breaking the declared output schema is an error result", async () => {
			const r = await call("mcp.call", { server: "calc", tool: "bad-output" });
			expect(r.is_error).toBe(true);
			// The SDK's server checks its own output first; the platform checks again (a server that does not).
			expect(r.content[0].text).toMatch(/output|structured/i);
			expect(r.content[0].text).toMatch(/sum/);
		});

		test("a result over the size limit is refused and logged as too_large", async () => {
			await expect(
				call("mcp.call", { server: "calc", tool: "big", arguments: { n: 200_000 } })
			).rejects.toMatchObject({
				code: 502,
				type: "MCP_RESULT_TOO_LARGE"
			});
			await svc().flush();
			expect(
				(await sql.query("SELECT count(*)::int AS n FROM mcp_executions WHERE outcome = 'too_large'")).rows[0].n
			).toBe(1);
		});

		test("a timeout cancels the call on the server (notifications/cancelled)", async () => {
			const before = http.cancelled.length;
			await expect(
				call("mcp.call", { server: "calc", tool: "slow", arguments: { ms: 30_000 }, timeout_ms: 200 })
			).rejects.toMatchObject({ code: 504, type: "MCP_TIMEOUT" });
			await waitUntil(
				"the server to see the cancellation",
				async () => http.cancelled.length,
				n => n === before + 1
			);
			// The execution's row and its event are written with the next batch.
			await svc().flush();
			expect((await outbox("mcp.tool.execution.failed")).some(e => e.outcome === "timeout")).toBe(true);
		});

		test("cancelling the caller (mcp.cancel with its request id) cancels the call on the server", async () => {
			const before = http.cancelled.length;
			const pending = call("mcp.call", { server: "calc", tool: "slow", arguments: { ms: 30_000 } }, auth, {
				requestID: "cancel-me-1"
			});
			await waitUntil(
				"the call to be in flight",
				async () => svc().inFlight.size,
				n => n === 1
			);
			broker.broadcast("mcp.cancel", { requestId: "cancel-me-1" });
			await expect(pending).rejects.toMatchObject({ code: 499, type: "CANCELLED" });
			await waitUntil(
				"the server to see the cancellation",
				async () => http.cancelled.length,
				n => n === before + 1
			);
		});

		test("progress notifications are relayed (mcp.progress, with the caller's request id)", async () => {
			const r = await call("mcp.call", { server: "calc", tool: "progress", arguments: { steps: 3 } }, auth, {
				requestID: "progress-1"
			});
			const seen = await waitUntil(
				"three progress events",
				async () => progress.filter(p => p.executionId === r.execution_id),
				l => l.length === 3
			);
			expect(seen.map(p => [p.progress, p.total, p.requestId])).toEqual([
				[1, 3, "progress-1"],
				[2, 3, "progress-1"],
				[3, 3, "progress-1"]
			]);
		});

		test("list_changed notifications rediscover: a changed schema is drift (event, marked changed), a new tool appears", async () => {
			http.changeTools();
			const tools = await waitUntil(
				"the new tool and the drift",
				async () => (await call("mcp-tools.list", { query: { server_id: httpServer.id }, pageSize: 100 })).rows,
				(rows: any[]) => rows.some(t => t.name === "late") && rows.some(t => t.name === "echo" && t.changed)
			);
			const echo = tools.find((t: any) => t.name === "echo");
			expect(echo.previous_input_schema.properties).not.toHaveProperty("times");
			expect(echo.input_schema.properties).toHaveProperty("times");
			const drift = await outbox("mcp.tool.schema.changed");
			expect(drift).toEqual([
				expect.objectContaining({ tool: "echo", change: "input", serverId: httpServer.id })
			]);
			// Acknowledged by an admin; a refresh with nothing new changes nothing.
			await call("mcp-tools.update", { id: echo.id, changed: false });
			const again = await call("mcp-servers.refresh", { id: httpServer.id });
			expect(again.drift).toEqual([]);
		});

		test("the older HTTP+SSE transport", async () => {
			const s = await call("mcp-servers.create", {
				name: "calc-sse",
				transport: "sse",
				url: `${http.url}/sse`,
				headers: { Authorization: { secret: "MCP_TOKEN" } }
			});
			expect(s.last_error).toBeNull();
			const r = await call("mcp.call", { server: "calc-sse", tool: "add", arguments: { a: 40, b: 2 } });
			expect(r.structured_content).toEqual({ sum: 42 });
		});

		test("allow-lists (organization, team) and tools that need approval", async () => {
			await call("mcp-tools.setAllowList", { server_id: httpServer.id, tools: ["add", "echo"] });
			await expect(call("mcp.call", { server: "calc", tool: "whoami" })).rejects.toMatchObject({ code: 403 });
			let available = await call("mcp-tools.available", { servers: ["calc"] });
			expect(available.tools.map((t: any) => t.name).sort()).toEqual(["add", "echo"]);
			// A team of the caller's limited to echo.
			const team = (
				await sql.query("INSERT INTO teams (organization_id, name) VALUES ($1, 'limited') RETURNING id", [
					auth.organizationId
				])
			).rows[0];
			await sql.query("INSERT INTO team_members (team_id, user_id, organization_id) VALUES ($1, $2, $3)", [
				team.id,
				auth.userId,
				auth.organizationId
			]);
			await call("mcp-tools.setAllowList", { server_id: httpServer.id, team_id: team.id, tools: ["echo"] });
			await expect(
				call("mcp.call", { server: "calc", tool: "add", arguments: { a: 1, b: 1 } })
			).rejects.toMatchObject({
				code: 403
			});
			await call("mcp-tools.setAllowList", { server_id: httpServer.id, team_id: team.id, tools: null });
			await call("mcp-tools.setAllowList", { server_id: httpServer.id, tools: null });

			const add = (await call("mcp-tools.list", { query: { server_id: httpServer.id, name: "add" } })).rows[0];
			await call("mcp-tools.update", { id: add.id, requires_approval: true });
			await expect(
				call("mcp.call", { server: "calc", tool: "add", arguments: { a: 1, b: 1 } })
			).rejects.toMatchObject({
				code: 409,
				type: "APPROVAL_REQUIRED"
			});
			const ok = await call("mcp.call", {
				server: "calc",
				tool: "add",
				arguments: { a: 1, b: 1 },
				approved: true
			});
			expect(ok.structured_content).toEqual({ sum: 2 });
			available = await call("mcp-tools.available", {});
			expect(
				available.tools.find((t: any) => t.server_name === "calc" && t.name === "add").requires_approval
			).toBe(true);
			await call("mcp-tools.update", { id: add.id, requires_approval: false });
		});

		test("the per-tool rate limit refuses the call over it and emits the rate-limit event", async () => {
			await call("mcp-servers.update", { id: httpServer.id, tool_calls_per_minute: 3 });
			for (let i = 0; i < 3; i++)
				await call("mcp.call", { server: "calc", tool: "echo", arguments: { message: "m" } });
			await expect(
				call("mcp.call", { server: "calc", tool: "echo", arguments: { message: "m" } })
			).rejects.toMatchObject({
				code: 429
			});
			await waitUntil(
				"the rate-limit event",
				() => outbox("mcp.server.rate_limit.exceeded"),
				l => l.length === 1
			);
			expect((await outbox("mcp.server.rate_limit.exceeded"))[0]).toMatchObject({
				scope: "tool",
				limit: 3,
				tool: "echo"
			});
			await call("mcp-servers.update", { id: httpServer.id, tool_calls_per_minute: null });
		});

		test("health: thresholds, and exactly one health.changed per transition under concurrent checks", async () => {
			const events = () => outbox("mcp.server.health.changed");
			const base = (await events()).filter(e => e.serverId === httpServer.id).length;
			await call("mcp-servers.check", { id: httpServer.id }); // unknown -> healthy
			http.down = true;
			await Promise.all(Array.from({ length: 6 }, () => call("mcp-servers.check", { id: httpServer.id })));
			let server = await call("mcp-servers.get", { id: httpServer.id });
			expect(server.health).toBe("unhealthy");
			http.down = false;
			await call("mcp-servers.check", { id: httpServer.id });
			expect((await call("mcp-servers.get", { id: httpServer.id })).health).toBe("unhealthy");
			await Promise.all(Array.from({ length: 4 }, () => call("mcp-servers.check", { id: httpServer.id })));
			server = await call("mcp-servers.get", { id: httpServer.id });
			expect(server.health).toBe("healthy");
			const mine = (await events()).filter(e => e.serverId === httpServer.id).slice(base);
			expect(mine.map(e => `${e.from}->${e.to}`)).toEqual([
				"unknown->healthy",
				"healthy->unhealthy",
				"unhealthy->healthy"
			]);
			const timeline = await call("mcp-servers.health", { id: httpServer.id });
			expect(timeline.length).toBe(12);
			expect(timeline.filter((c: any) => !c.ok).length).toBe(6);
		});
	});

	describe("stdio", () => {
		let everything: any;

		test("server-everything: env from secrets, none of the platform's environment, own process group", async () => {
			everything = await call("mcp-servers.create", {
				name: "everything",
				transport: "stdio",
				command: path.join(BIN, "mcp-server-everything"),
				args: ["stdio"],
				env: { EVERYTHING_KEY: { secret: "EVERYTHING_KEY" }, GREETING: "hello" }
			});
			expect(everything.last_error).toBeNull();
			const tools = (await call("mcp-tools.list", { query: { server_id: everything.id }, pageSize: 100 })).rows;
			expect(tools.map((t: any) => t.name)).toEqual(expect.arrayContaining(["echo", "get-sum", "get-env"]));
			const caps = await call("mcp-servers.capabilities", { id: everything.id });
			expect(caps.resources.length).toBeGreaterThan(0);
			expect(caps.prompts.length).toBeGreaterThan(0);
			const sum = await call("mcp.call", { server: "everything", tool: "get-sum", arguments: { a: 20, b: 22 } });
			expect(sum.content[0].text).toContain("42");
			const env = await call("mcp.call", { server: "everything", tool: "get-env" });
			const text = env.content[0].text as string;
			expect(text).toContain("hello");
			expect(text).toContain("ev-secret-91c2d7");
			for (const platformVar of ["DATABASE_URL", "JWT_SECRET", "REDIS_URL", "NODE_OPTIONS"])
				expect(text).not.toContain(platformVar);
			await svc().flush();
			const logged = (await sql.query("SELECT result FROM mcp_executions WHERE id = $1", [env.execution_id]))
				.rows[0];
			expect(JSON.stringify(logged.result)).not.toContain("ev-secret-91c2d7");
			const [pid] = svc().pool.pids();
			expect(pgidOf(pid)).toBe(pid);
			// The kernel limits apply to it (prlimit).
			const limits = fs.readFileSync(`/proc/${pid}/limits`, "utf8");
			expect(limits).toMatch(/Max address space\s+2147483648/);
			expect(limits).toMatch(/Max open files\s+1024/);
		});

		test("server-filesystem over stdio lists a directory", async () => {
			const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mcp-fs-"));
			fs.writeFileSync(path.join(dir, "hello.txt"), "hi");
			await call("mcp-servers.create", {
				name: "files",
				transport: "stdio",
				command: path.join(BIN, "mcp-server-filesystem"),
				args: [dir]
			});
			const r = await call("mcp.call", { server: "files", tool: "list_directory", arguments: { path: dir } });
			expect(r.content[0].text).toContain("hello.txt");
			const read = await call("mcp.call", {
				server: "files",
				tool: "read_text_file",
				arguments: { path: path.join(dir, "hello.txt") }
			});
			expect(read.content[0].text).toBe("hi");
		});

		test("a crashing stdio server is detected, its group reaped, and restarted", async () => {
			const entry = svc().pool.entry(auth.organizationId, everything.id)!;
			const pid = entry.pid!;
			process.kill(-pid, "SIGKILL");
			const restarted = await waitUntil(
				"a new process",
				async () => svc().pool.entry(auth.organizationId, everything.id)?.pid,
				p => !!p && p !== pid
			);
			expect(groupAlive(pid)).toBe(false);
			expect(pgidOf(restarted!)).toBe(restarted);
			const checks = await call("mcp-servers.health", { id: everything.id });
			expect(checks[0]).toMatchObject({ ok: false, error: expect.stringMatching(/ended unexpectedly/) });
			const r = await call("mcp.call", { server: "everything", tool: "echo", arguments: { message: "back" } });
			expect(r.content[0].text).toContain("back");
		});

		test("a launcher's child is reaped with it (process group); removal and idle close leave no process", async () => {
			const s = await call("mcp-servers.create", {
				name: "tiny-launcher",
				transport: "stdio",
				command: process.execPath,
				args: [TINY],
				env: { TINY_SPAWN_CHILD: "1" }
			});
			const pid = svc().pool.entry(auth.organizationId, s.id)!.pid!;
			const group = ps(["-o", "pid=", "-g", String(pid)])
				.split("\n")
				.map(x => Number(x.trim()))
				.filter(Boolean);
			expect(group.length).toBe(2); // the server and its sleep
			await call("mcp-servers.remove", { id: s.id });
			await waitUntil(
				"the group to be gone",
				async () => groupAlive(pid),
				alive => !alive
			);
			expect(await outbox("mcp.server.deregistered")).toEqual([expect.objectContaining({ serverId: s.id })]);
		});

		test("100 open/close cycles of a stdio server leave no child process", async () => {
			const s = await call("mcp-servers.create", {
				name: "tiny",
				transport: "stdio",
				command: process.execPath,
				args: [TINY]
			});
			const pool = svc().pool;
			const spec = await svc().specFor(await svc().state(organizationSql(auth.organizationId), s.id));
			await pool.close(auth.organizationId, s.id);
			const before = childPids().length;
			for (let i = 0; i < 100; i++) {
				const e = await pool.acquire(spec);
				await e.client.ping();
				await pool.close(auth.organizationId, s.id);
			}
			expect(childPids().length).toBe(before);
			expect(pool.entry(auth.organizationId, s.id)).toBeUndefined();
		});
	});

	test("with stdio turned off, stdio servers cannot be registered or called; stopping reaps every child", async () => {
		await call("mcp.call", { server: "everything", tool: "echo", arguments: { message: "warm" } });
		const pids = svc().pool.pids();
		expect(pids.length).toBeGreaterThan(0);
		await stop();
		for (const pid of pids) expect(groupAlive(pid)).toBe(false);
		expect(childPids()).toEqual([]);
		const t = await createTestBroker(
			{
				DATABASE_URL: db.url,
				MCP_STDIO_ENABLED: "false",
				MCP_HEALTH_INTERVAL_MS: "0",
				MCP_REFRESH_INTERVAL_MS: "0"
			},
			MCP_STACK
		);
		broker = t.broker;
		stop = t.stop;
		await expect(
			call("mcp-servers.create", { name: "nope", transport: "stdio", command: process.execPath, args: [TINY] })
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "transport" })] });
		await expect(
			call("mcp.call", { server: "everything", tool: "echo", arguments: { message: "x" } })
		).rejects.toMatchObject({ code: 403 });
		expect(childPids()).toEqual([]);
	});
});
