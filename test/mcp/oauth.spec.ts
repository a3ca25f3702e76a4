// OAuth for HTTP MCP servers that ask for it, through the real gateway: a server built with the SDK's auth router
// answers 401 with its metadata; the admin's Authorize gives the URL, the browser's way through the authorization
// server and back to the platform's callback is followed with fetch, the tokens land in the secrets service only, a
// pooled connection refreshes them on its own, and a withdrawn grant shows "authorization needed" again.
import net from "net";
import pg from "pg";
import { describeWith, createTestDatabase, uniqueNamespace } from "../helpers/infra";
import { startGateway, register, http, TestGateway, Member } from "../helpers/gateway";
import { waitUntil } from "../helpers/wait";
import { MCP_STACK } from "./stack";
import { TestOAuthMcpServer } from "./oauth-server";
import { resolveBinding } from "../../mixins/secrets-client.mixin";
import type { McpThis } from "../../services/mcp/mcp.service";

jest.setTimeout(120_000);

const FILES = MCP_STACK.filter(f => !f.startsWith("services/auth/"));

async function freePort(): Promise<number> {
	const s = net.createServer();
	await new Promise<void>(r => s.listen(0, "127.0.0.1", r));
	const port = (s.address() as net.AddressInfo).port;
	await new Promise(r => s.close(r));
	return port;
}

describeWith(["postgres"])("mcp: OAuth for HTTP servers that ask for it", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	let sql: pg.Client;
	let a: Member, b: Member;
	const mcp = new TestOAuthMcpServer();
	let serverId = "";
	const asA = () => ({ token: a.accessToken, org: a.organization.id });
	const api = (method: string, path: string, body?: unknown) => http(gw.port, method, path, { ...asA(), body });

	beforeAll(async () => {
		await mcp.start();
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		const port = await freePort();
		gw = await startGateway(
			{
				DATABASE_URL: db.url,
				NAMESPACE: uniqueNamespace("mcp-oauth"),
				PORT: String(port),
				MCP_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
				MCP_OAUTH_REDIRECT_URL: `http://127.0.0.1:${port}/api/mcp/oauth/callback`,
				MCP_HEALTH_INTERVAL_MS: "0",
				MCP_REFRESH_INTERVAL_MS: "0"
			},
			FILES
		);
		a = await register(gw.port, "mcp-oauth-a@example.com");
		b = await register(gw.port, "mcp-oauth-b@example.com");
	}, 90_000);

	afterAll(async () => {
		await gw?.stop();
		await sql?.end();
		await db?.drop();
		await mcp.stop();
	});

	test("a server that answers 401 with OAuth metadata is registered as needing authorization", async () => {
		const r = await api("POST", "/api/mcp/servers", { name: "guarded", transport: "http", url: mcp.url });
		expect(r.status).toBe(200);
		serverId = r.body.id;
		expect(r.body.oauth_status).toBe("required");
		expect(r.body.last_error).toMatch(/needs an OAuth authorization/);
		// Nothing was registered with the authorization server in the background.
		expect(mcp.provider.clients.size).toBe(0);
		const call = await api("POST", "/api/mcp/call", { server: "guarded", tool: "add", arguments: {} });
		expect(call.status).toBe(404); // no tool known before an authorized discovery
	});

	test("Authorize, the browser's round trip and the callback make the server usable", async () => {
		const r = await api("POST", `/api/mcp/servers/${serverId}/authorize`);
		expect(r.status).toBe(200);
		expect(r.body.authorized).toBe(false);
		const authorizeUrl = new URL(r.body.authorization_url);
		expect(`${authorizeUrl.origin}${authorizeUrl.pathname}`).toBe(new URL("/authorize", mcp.url).href);
		expect(authorizeUrl.searchParams.get("code_challenge_method")).toBe("S256");
		// Dynamic client registration happened, with the platform's callback.
		expect(mcp.provider.clients.size).toBe(1);
		expect([...mcp.provider.clients.values()][0].redirect_uris).toEqual([
			`http://127.0.0.1:${gw.port}/api/mcp/oauth/callback`
		]);

		// The browser: to the authorization server, which sends it back to the platform with a code.
		const consent = await fetch(authorizeUrl, { redirect: "manual" });
		expect(consent.status).toBe(302);
		const callback = consent.headers.get("location")!;
		expect(callback).toContain("/api/mcp/oauth/callback?");
		const back = await fetch(callback, { redirect: "manual" });
		expect(back.status).toBe(302);
		expect(back.headers.get("location")).toBe(`/mcp-servers/${serverId}?oauth=authorized`);

		const server = await api("GET", `/api/mcp/servers/${serverId}`);
		expect(server.body.oauth_status).toBe("authorized");
		expect(server.body.last_error).toBeNull();
		const tools = await api("GET", `/api/mcp/tools?server_id=${serverId}`);
		expect(JSON.stringify(tools.body)).toContain('"add"');
		const call = await api("POST", "/api/mcp/call", { server: "guarded", tool: "add", arguments: { a: 2, b: 3 } });
		expect(call.status).toBe(200);
		expect(call.body.content[0].text).toBe("5");

		// The same callback again is refused: a state is used once.
		const replay = await fetch(callback, { redirect: "manual" });
		expect(replay.headers.get("location")).toMatch(/^\/mcp-servers\?oauth_error=/);
	});

	test("an expired access token is refreshed by the pooled connection and stored as a new version", async () => {
		const version = async () =>
			(
				await sql.query("SELECT current_version FROM secrets WHERE name = $1 AND deleted_at IS NULL", [
					`mcp/oauth/${serverId}`
				])
			).rows[0]?.current_version as number;
		const before = await version();
		expect(before).toBeGreaterThan(0);
		mcp.expireAccessTokens();
		const call = await api("POST", "/api/mcp/call", { server: "guarded", tool: "add", arguments: { a: 1, b: 1 } });
		expect(call.status).toBe(200);
		expect(call.body.content[0].text).toBe("2");
		expect(mcp.provider.refreshes).toBe(1);
		expect(await version()).toBeGreaterThan(before);
	});

	test("tokens are kept in the secrets service only: not in the mcp tables, events, logs or answers", async () => {
		expect(mcp.provider.issued.length).toBeGreaterThanOrEqual(4);
		const dump = async (q: string) => JSON.stringify((await sql.query(q)).rows);
		const places = [
			await dump("SELECT * FROM mcp_servers"),
			await dump("SELECT * FROM mcp_executions"),
			await dump("SELECT * FROM mcp_server_capabilities"),
			await dump("SELECT * FROM outbox"),
			await dump("SELECT * FROM secret_audit_logs"),
			JSON.stringify((await api("GET", "/api/mcp/servers")).body),
			JSON.stringify((await api("GET", "/api/secrets")).body),
			gw.lines.join("\n")
		];
		const client = [...mcp.provider.clients.values()][0];
		for (const value of [...mcp.provider.issued, client.client_secret!])
			for (const place of places) expect(place).not.toContain(value);
		// The vault holds them, as a secret named for the server (its value only through the secrets service).
		const names = (await api("GET", "/api/secrets")).body.map((s: { name: string }) => s.name);
		expect(names).toContain(`mcp/oauth/${serverId}`);
		// Another organization sees neither the server nor the secret.
		const other = await http(gw.port, "GET", `/api/mcp/servers/${serverId}`, {
			token: b.accessToken,
			org: b.organization.id
		});
		expect(other.status).toBe(404);
	});

	test("a withdrawn grant turns the server back to 'authorization needed'", async () => {
		mcp.revokeAll();
		const call = await api("POST", "/api/mcp/call", { server: "guarded", tool: "add", arguments: { a: 1, b: 2 } });
		expect(call.status).toBe(502);
		await waitUntil(
			"oauth_status required",
			async () => (await api("GET", `/api/mcp/servers/${serverId}`)).body.oauth_status,
			s => s === "required"
		);
	});

	test("secrets.store: only a proved service, only under its own prefix", async () => {
		const mcpService = gw.broker.getLocalService("mcp") as unknown as McpThis;
		const ref = { organizationId: a.organization.id, environment: "production", name: "mcp/oauth/test" };
		const proof = (name: string) =>
			mcpService.identityMeta("secrets.store", ref.organizationId, resolveBinding({ ...ref, name }));
		// No proof of identity: refused.
		await expect(gw.broker.call("secrets.store", { ...ref, value: "v" })).rejects.toMatchObject({ code: 403 });
		// The mcp service's proof, but a name outside `mcp/`: refused.
		await expect(
			gw.broker.call(
				"secrets.store",
				{ ...ref, name: "OPENAI_API_KEY", value: "v" },
				{ meta: proof("OPENAI_API_KEY") }
			)
		).rejects.toMatchObject({ code: 403 });
		// Its proof for one name does not store another.
		await expect(
			gw.broker.call("secrets.store", { ...ref, name: "mcp/oauth/other", value: "v" }, { meta: proof(ref.name) })
		).rejects.toMatchObject({ code: 403 });
		expect(await gw.broker.call("secrets.store", { ...ref, value: "v" }, { meta: proof(ref.name) })).toEqual({
			stored: true
		});
	});

	test("a callback with an unknown state is refused without touching any server", async () => {
		const r = await fetch(`http://127.0.0.1:${gw.port}/api/mcp/oauth/callback?state=forged&code=x`, {
			redirect: "manual"
		});
		expect(r.status).toBe(302);
		expect(r.headers.get("location")).toMatch(/^\/mcp-servers\?oauth_error=/);
	});

	test("removing the server removes its stored tokens", async () => {
		expect((await api("DELETE", `/api/mcp/servers/${serverId}`)).status).toBe(200);
		const row = (await sql.query("SELECT deleted_at FROM secrets WHERE name = $1", [`mcp/oauth/${serverId}`]))
			.rows[0];
		expect(row.deleted_at).not.toBeNull();
	});
});
