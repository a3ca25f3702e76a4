// The platform served over MCP (/mcp): an MCP client built with the SDK lists and calls the platform's own tools with
// an API key, through the same permissions as REST, and is refused without a key or with one lacking permission.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { describeWith, createTestDatabase, uniqueNamespace } from "../helpers/infra";
import { startGateway, register, http, TestGateway, Member } from "../helpers/gateway";

const FILES = [
	"services/secrets/secrets.service.ts",
	"services/prompts/prompts.service.ts",
	"services/planning/states.service.ts",
	"services/planning/entities.service.ts"
];
const TOOLS = [
	"knowledge_search",
	"planning_task_create",
	"planning_tasks",
	"prompts_render",
	"secret_names",
	"usage_summary"
];

describeWith(["postgres"])("the platform as an MCP server", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	let a: Member, b: Member;
	let memberKey: string, viewerKey: string, otherOrgKey: string;
	const asA = () => ({ token: a.accessToken, org: a.organization.id });

	async function client(key?: string) {
		const url = new URL(`http://127.0.0.1:${gw.port}/mcp`);
		const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
		const c = new Client({ name: "test-client", version: "1.0.0" });
		await c.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
		return c;
	}

	beforeAll(async () => {
		db = await createTestDatabase();
		gw = await startGateway({ DATABASE_URL: db.url, NAMESPACE: uniqueNamespace("mcp-server") }, FILES);
		a = await register(gw.port, "mcp-server-a@example.com");
		b = await register(gw.port, "mcp-server-b@example.com");
		for (const name of ["OPENAI_API_KEY", "STRIPE_SECRET"])
			expect(
				(
					await http(gw.port, "POST", "/api/secrets", {
						...asA(),
						body: { environment: "production", name, value: `value-of-${name}-never-shown` }
					})
				).status
			).toBe(200);
		const key = async (m: Member, role?: string) =>
			(
				await http(gw.port, "POST", "/api/auth/api-keys", {
					token: m.accessToken,
					org: m.organization.id,
					body: { name: `mcp ${role ?? "owner"}`, ...(role ? { role } : {}) }
				})
			).body.key as string;
		memberKey = await key(a, "member");
		viewerKey = await key(a, "viewer");
		otherOrgKey = await key(b);
	}, 60_000);

	afterAll(async () => {
		await gw?.stop();
		await db?.drop();
	});

	test("lists the platform's tools and calls one with an API key: secret names, never values", async () => {
		const c = await client(memberKey);
		try {
			const { tools } = await c.listTools();
			expect(tools.map(t => t.name).sort()).toEqual(TOOLS);
			expect(tools.find(t => t.name === "knowledge_search")!.inputSchema.required).toEqual(["query"]);
			const r: any = await c.callTool({ name: "secret_names", arguments: { environment: "production" } });
			expect(r.isError).toBeFalsy();
			expect(r.structuredContent.secrets.map((s: any) => s.name).sort()).toEqual([
				"OPENAI_API_KEY",
				"STRIPE_SECRET"
			]);
			expect(JSON.stringify(r)).not.toContain("never-shown");
		} finally {
			await c.close();
		}
	});

	test("each call is the caller's: another organization's key sees its own secrets only", async () => {
		const c = await client(otherOrgKey);
		try {
			const r: any = await c.callTool({ name: "secret_names", arguments: {} });
			expect(r.isError).toBeFalsy();
			expect(r.structuredContent.secrets).toEqual([]);
		} finally {
			await c.close();
		}
	});

	test("planning tools: create and find tasks as the caller, through the planning actions' checks", async () => {
		const c = await client(memberKey);
		const other = await client(otherOrgKey);
		try {
			const project = await http(gw.port, "POST", "/api/planning/entities", {
				...asA(),
				body: { kind: "project", title: "Platform" }
			});
			const made: any = await c.callTool({
				name: "planning_task_create",
				arguments: { title: "Rotate the signing keys", project_id: project.body.id, priority: "high" }
			});
			expect(made.isError).toBeFalsy();
			expect(made.structuredContent.task).toMatchObject({
				title: "Rotate the signing keys",
				project_id: project.body.id,
				fields: { priority: "high" },
				article_ids: []
			});
			await c.callTool({ name: "planning_task_create", arguments: { title: "Write the changelog" } });
			const found: any = await c.callTool({ name: "planning_tasks", arguments: { search: "signing" } });
			expect(found.structuredContent.tasks.map((t: any) => t.id)).toEqual([made.structuredContent.task.id]);
			const ofProject: any = await c.callTool({
				name: "planning_tasks",
				arguments: { project_id: project.body.id }
			});
			expect(ofProject.structuredContent.total).toBe(1);
			// The same 422 as REST, naming the field.
			const bad: any = await c.callTool({
				name: "planning_task_create",
				arguments: { title: "x", priority: "whenever" }
			});
			expect(bad.isError).toBe(true);
			expect(bad.content[0].text).toMatch(/^422 .*fields\.priority/);
			// Another organization sees none of them, and cannot put a task under this one's project.
			const theirs: any = await other.callTool({ name: "planning_tasks", arguments: {} });
			expect(theirs.structuredContent).toEqual({ tasks: [], total: 0 });
			const foreign: any = await other.callTool({
				name: "planning_task_create",
				arguments: { title: "Sneak in", project_id: project.body.id }
			});
			expect(foreign.isError).toBe(true);
			expect(foreign.content[0].text).toMatch(/^422 .*parent_id/);
		} finally {
			await c.close();
			await other.close();
		}
	});

	test("a tool whose module is not running answers a tool error naming it", async () => {
		const c = await client(memberKey);
		try {
			const r: any = await c.callTool({ name: "usage_summary", arguments: {} });
			expect(r.isError).toBe(true);
			expect(r.content[0].text).toMatch(/503 usage\.summary is not available/);
		} finally {
			await c.close();
		}
	});

	test("refused without a key, with a wrong key, and a viewer key may list but not call", async () => {
		await expect(client()).rejects.toThrow(/401|authentication required/i);
		await expect(client("cide_not-a-real-key")).rejects.toThrow(/invalid API key/);
		const raw = await fetch(`http://127.0.0.1:${gw.port}/mcp`, {
			method: "POST",
			headers: { authorization: "Bearer cide_not-a-real-key", "content-type": "application/json" },
			body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
		});
		expect(raw.status).toBe(401);
		expect(raw.headers.get("www-authenticate")).toMatch(/^Bearer/);
		expect((await raw.json()).error.message).toMatch(/invalid API key/);
		const c = await client(viewerKey);
		try {
			expect((await c.listTools()).tools.length).toBe(TOOLS.length);
			const r: any = await c.callTool({ name: "secret_names", arguments: {} });
			expect(r.isError).toBe(true);
			expect(r.content[0].text).toMatch(/403 .*mcp:write/);
		} finally {
			await c.close();
		}
	});

	test("stateless: no session id is handed out, and GET is 405", async () => {
		const init = await fetch(`http://127.0.0.1:${gw.port}/mcp`, {
			method: "POST",
			headers: {
				authorization: `Bearer ${memberKey}`,
				"content-type": "application/json",
				accept: "application/json, text/event-stream"
			},
			body: JSON.stringify({
				jsonrpc: "2.0",
				id: 1,
				method: "initialize",
				params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
			})
		});
		expect(init.status).toBe(200);
		expect(init.headers.get("mcp-session-id")).toBeNull();
		expect((await init.json()).result.serverInfo.name).toBe("coder-ide-platform");
		const get = await fetch(`http://127.0.0.1:${gw.port}/mcp`, {
			headers: { authorization: `Bearer ${memberKey}` }
		});
		expect(get.status).toBe(405);
	});
});
