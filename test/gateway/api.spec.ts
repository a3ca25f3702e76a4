// The gateway over real HTTP and socket.io, with the services in other processes over RabbitMQ: two gateway
// replicas sharing Redis, one auth node. What a client of the platform sees, status by status.
import { ServiceBroker } from "moleculer";
import { io, Socket } from "socket.io-client";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL, REDIS_URL } from "../helpers/infra";
import { startNode, TEST_JWT_SECRET, TEST_TRANSIT_KEY } from "../helpers/process";
import { freePorts } from "../helpers/ports";
import { loadConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";
import { openApiFromServices } from "../../scripts/api-types";

let G1 = 0;
let G2 = 0;
const USER_LIMIT = 40;

type Res = { status: number; body: any; headers: Headers };
async function http(
	port: number,
	method: string,
	path: string,
	opts: { token?: string; org?: string; body?: unknown; raw?: string; type?: string; apiKey?: string } = {}
): Promise<Res> {
	const headers: Record<string, string> = {};
	if (opts.token) headers.authorization = `Bearer ${opts.token}`;
	if (opts.apiKey) headers["x-api-key"] = opts.apiKey;
	if (opts.org) headers["x-organization-id"] = opts.org;
	let body: string | undefined;
	if (opts.raw !== undefined) {
		body = opts.raw;
		headers["content-type"] = opts.type ?? "application/json";
	} else if (opts.body !== undefined) {
		body = JSON.stringify(opts.body);
		headers["content-type"] = "application/json";
	}
	const r = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, body });
	const text = await r.text();
	let parsed: any = text;
	try {
		parsed = JSON.parse(text);
	} catch {
		/* not JSON */
	}
	return { status: r.status, body: parsed, headers: r.headers };
}

function connect(port: number, auth: Record<string, unknown>): Promise<Socket> {
	return new Promise((resolve, reject) => {
		const s = io(`http://127.0.0.1:${port}`, {
			path: "/socket.io",
			auth,
			transports: ["websocket"],
			reconnection: false
		});
		s.once("ready", () => resolve(s));
		s.once("connect_error", err => {
			s.close();
			reject(err);
		});
	});
}

const call = (s: Socket, action: string, params?: unknown) =>
	new Promise<any>(resolve => s.emit("call", { action, params }, resolve));

describeWith(["postgres", "rabbitmq", "redis"])("gateway (two replicas, auth in another process)", () => {
	const namespace = uniqueNamespace("gw");
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let nodes: ReturnType<typeof startNode>[] = [];
	let caller: ServiceBroker;
	const sockets: Socket[] = [];

	const env = () => ({
		TRANSPORTER: AMQP_URL,
		CACHER: REDIS_URL,
		DATABASE_URL: db.url,
		NAMESPACE: namespace,
		JWT_SECRET: TEST_JWT_SECRET,
		TRANSIT_KEY: TEST_TRANSIT_KEY,
		RATE_LIMIT_USER_PER_MINUTE: String(USER_LIMIT),
		REQUEST_TIMEOUT: "1500",
		REQUEST_RETRIES: "1"
	});

	let alice: any, bob: any, viewer: any, bobAuthOrg: string;

	beforeAll(async () => {
		[G1, G2] = await freePorts(2);
		db = await createTestDatabase();
		nodes = [
			startNode({ ...env(), SERVICES: "auth", NODE_ID: `${namespace}-auth` }),
			startNode({ ...env(), SERVICES: "gateway", PORT: String(G1), NODE_ID: `${namespace}-gw1` }),
			startNode({ ...env(), SERVICES: "gateway", PORT: String(G2), NODE_ID: `${namespace}-gw2` })
		];
		await Promise.all(nodes.map(n => n.ready));
		caller = new ServiceBroker({
			...brokerOptions(loadConfig({ ...env(), SERVICES: "" })),
			nodeID: `${namespace}-caller`,
			logger: false
		});
		await caller.start();
		await caller.waitForServices(["auth", "gateway"], 20_000);
		// Both gateways route the auth module once its services are known to them.
		for (const port of [G1, G2]) {
			const deadline = Date.now() + 20_000;
			while ((await http(port, "POST", "/api/auth/login", { body: {} })).status === 404 && Date.now() < deadline)
				await new Promise(r => setTimeout(r, 200));
		}
		const reg = (email: string) =>
			http(G1, "POST", "/api/auth/register", {
				body: { email, password: "correct horse battery", name: email.split("@")[0] }
			});
		alice = (await reg("alice@example.com")).body;
		bob = (await reg("bob@example.com")).body;
		viewer = (await reg("viewer@example.com")).body;
		bobAuthOrg = bob.organization.id;
		await http(G1, "POST", `/api/auth/organizations/${bobAuthOrg}/members`, {
			token: bob.accessToken,
			org: bobAuthOrg,
			body: { email: "viewer@example.com", role: "viewer" }
		});
	}, 90_000);

	afterAll(async () => {
		for (const s of sockets) s.close();
		await caller?.stop();
		await Promise.all(nodes.map(n => n.stop("SIGKILL")));
		await db?.drop();
	});

	test("auth flows over HTTP: register, login, me, refresh rotation, logout", async () => {
		const login = await http(G2, "POST", "/api/auth/login", {
			body: { email: "alice@example.com", password: "correct horse battery" }
		});
		expect(login.status).toBe(200);
		const me = await http(G1, "GET", "/api/auth/me", {
			token: login.body.accessToken,
			org: login.body.defaultOrganizationId
		});
		expect(me.status).toBe(200);
		expect(me.body).toMatchObject({ user: { email: "alice@example.com" }, role: "owner" });
		const refreshed = await http(G2, "POST", "/api/auth/refresh", {
			body: { refreshToken: login.body.refreshToken }
		});
		expect(refreshed.status).toBe(200);
		const reused = await http(G1, "POST", "/api/auth/refresh", { body: { refreshToken: login.body.refreshToken } });
		expect(reused.status).toBe(401);
		// Reuse killed the session: the rotated tokens die too, on both gateways.
		expect((await http(G1, "GET", "/api/auth/me", { token: refreshed.body.accessToken })).status).toBe(401);
		expect((await http(G2, "GET", "/api/auth/me", { token: refreshed.body.accessToken })).status).toBe(401);

		const again = await http(G1, "POST", "/api/auth/login", {
			body: { email: "alice@example.com", password: "correct horse battery" }
		});
		expect((await http(G2, "GET", "/api/auth/me", { token: again.body.accessToken })).status).toBe(200);
		expect((await http(G1, "POST", "/api/auth/logout", { token: again.body.accessToken })).status).toBe(200);
		// Both replicas dropped the cached identity at once.
		expect((await http(G2, "GET", "/api/auth/me", { token: again.body.accessToken })).status).toBe(401);
		expect((await http(G1, "GET", "/api/auth/me", { token: again.body.accessToken })).status).toBe(401);
	});

	test("every error status has the one error shape", async () => {
		const noFields = await http(G1, "POST", "/api/auth/register", { body: { email: "nope", password: "short" } });
		expect(noFields.status).toBe(422);
		expect(noFields.body.error.code).toBe("VALIDATION_ERROR");
		expect(noFields.body.error.fields.map((f: any) => f.field).sort()).toEqual(["email", "name", "password"]);

		const conflict = await http(G1, "POST", "/api/auth/register", {
			body: { email: "alice@example.com", password: "correct horse battery", name: "A" }
		});
		expect(conflict).toMatchObject({ status: 409, body: { error: { code: "CONFLICT" } } });

		expect(await http(G1, "GET", "/api/auth/me")).toMatchObject({
			status: 401,
			body: { error: { code: "UNAUTHORIZED" } }
		});
		expect(await http(G1, "GET", "/api/auth/me", { token: "not.a.token" })).toMatchObject({
			status: 401,
			body: { error: { code: "UNAUTHORIZED" } }
		});
		expect(await http(G1, "GET", "/api/nowhere")).toMatchObject({
			status: 404,
			body: { error: { code: "NOT_FOUND" } }
		});
		expect(await http(G1, "DELETE", "/api/auth/login")).toMatchObject({
			status: 404,
			body: { error: { code: "NOT_FOUND" } }
		});
		expect(await http(G1, "POST", "/api/auth/login", { raw: '{"email": ' })).toMatchObject({
			status: 400,
			body: { error: { code: "MALFORMED_JSON" } }
		});
		expect(
			await http(G1, "POST", "/api/auth/login", { raw: "email=a", type: "application/x-www-form-urlencoded" })
		).toMatchObject({
			status: 415,
			body: { error: { code: "UNSUPPORTED_MEDIA_TYPE" } }
		});
		const big = await http(G1, "POST", "/api/auth/login", {
			raw: JSON.stringify({ email: "x".repeat(2_000_000) })
		});
		expect(big).toMatchObject({ status: 413, body: { error: { code: "PAYLOAD_TOO_LARGE" } } });
		const teams404 = await http(G1, "GET", "/api/auth/teams/00000000-0000-0000-0000-000000000000", {
			token: bob.accessToken,
			org: bobAuthOrg
		});
		expect(teams404).toMatchObject({ status: 404, body: { error: { code: "NOT_FOUND" } } });
		// Every response carries the security headers.
		expect(teams404.headers.get("x-content-type-options")).toBe("nosniff");
		expect(teams404.headers.get("x-frame-options")).toBe("DENY");
	});

	test("a viewer is refused a write; a member of org A is refused every org-B resource", async () => {
		const team = await http(G1, "POST", "/api/auth/teams", {
			token: bob.accessToken,
			org: bobAuthOrg,
			body: { name: "Core" }
		});
		expect(team.status).toBe(200);
		const asViewer = { token: viewer.accessToken, org: bobAuthOrg };
		expect((await http(G2, "GET", `/api/auth/teams/${team.body.id}`, asViewer)).status).toBe(200);
		expect(await http(G2, "POST", "/api/auth/teams", { ...asViewer, body: { name: "Nope" } })).toMatchObject({
			status: 403,
			body: { error: { code: "FORBIDDEN" } }
		});
		expect(
			(await http(G2, "PATCH", `/api/auth/teams/${team.body.id}`, { ...asViewer, body: { name: "x" } })).status
		).toBe(403);

		// Alice names org B: refused outright.
		expect((await http(G1, "GET", "/api/auth/teams", { token: alice.accessToken, org: bobAuthOrg })).status).toBe(
			403
		);
		// Alice in her own org, with org-B ids: nothing exists.
		const asAlice = { token: alice.accessToken, org: alice.organization.id };
		for (const [method, path, body] of [
			["GET", `/api/auth/teams/${team.body.id}`],
			["PATCH", `/api/auth/teams/${team.body.id}`, { name: "x" }],
			["DELETE", `/api/auth/teams/${team.body.id}`],
			["GET", `/api/auth/teams/${team.body.id}/members`],
			["GET", `/api/auth/organizations/${bobAuthOrg}`],
			["GET", `/api/auth/organizations/${bobAuthOrg}/members`],
			["POST", `/api/auth/organizations/${bobAuthOrg}/members`, { email: "alice@example.com" }],
			["DELETE", `/api/auth/organizations/${bobAuthOrg}`]
		] as [string, string, unknown?][]) {
			const r = await http(G1, method, path, { ...asAlice, body });
			expect([method, path, r.status]).toEqual([method, path, 404]);
		}
	});

	test("internal actions are unreachable through any path, REST or socket", async () => {
		const token = bob.accessToken;
		for (const [method, path] of [
			["GET", "/api/auth/resolve"],
			["POST", "/api/auth/resolve"],
			["POST", "/api/auth.resolve"],
			["GET", "/api/health/live"],
			["GET", "/api/$node/list"],
			["GET", "/api/~node/list"],
			["GET", "/api/gateway/listAliases"],
			["GET", "/api/auth/%2e%2e/resolve"]
		]) {
			const r = await http(G1, method, path, {
				token,
				org: bobAuthOrg,
				body: method === "POST" ? { token } : undefined
			});
			expect([method, path, r.status]).toEqual([method, path, 404]);
		}
		const s = await connect(G2, { token, organizationId: bobAuthOrg });
		sockets.push(s);
		for (const action of ["auth.resolve", "$node.list", "health.ready", "gateway.listAliases"])
			expect([action, (await call(s, action, { token })).error?.code]).toEqual([action, "NOT_FOUND"]);
	});

	test("socket.io: a bad token is refused at the handshake", async () => {
		await expect(connect(G1, { token: "forged" })).rejects.toMatchObject({
			data: { code: "UNAUTHORIZED", status: 401 }
		});
		await expect(connect(G1, {})).rejects.toMatchObject({ data: { code: "UNAUTHORIZED" } });
		await expect(connect(G1, { token: alice.accessToken, organizationId: bobAuthOrg })).rejects.toMatchObject({
			data: { code: "FORBIDDEN" }
		});
	});

	test("socket.io: a push to org:X reaches clients of X on the other replica, never another organization", async () => {
		const bobOnG2 = await connect(G2, { token: bob.accessToken, organizationId: bobAuthOrg });
		const aliceOnG2 = await connect(G2, { token: alice.accessToken, organizationId: alice.organization.id });
		const viewerOnG1 = await connect(G1, { token: viewer.accessToken, organizationId: bobAuthOrg });
		sockets.push(bobOnG2, aliceOnG2, viewerOnG1);
		const got: Record<string, unknown[]> = { bob: [], alice: [], viewer: [] };
		bobOnG2.on("notification", p => got.bob.push(p));
		aliceOnG2.on("notification", p => got.alice.push(p));
		viewerOnG1.on("notification", p => got.viewer.push(p));

		caller.broadcast("gateway.push", {
			room: `org:${bobAuthOrg}`,
			event: "notification",
			payload: { text: "deploy finished" }
		});
		caller.broadcast("gateway.push", {
			room: `user:${alice.user.id}`,
			event: "notification",
			payload: { text: "for alice only" }
		});
		const deadline = Date.now() + 5000;
		while ((got.bob.length < 1 || got.viewer.length < 1 || got.alice.length < 1) && Date.now() < deadline)
			await new Promise(r => setTimeout(r, 50));
		expect(got.bob).toEqual([{ text: "deploy finished" }]);
		expect(got.viewer).toEqual([{ text: "deploy finished" }]);
		expect(got.alice).toEqual([{ text: "for alice only" }]);
	});

	test("socket.io: action calls are authorized like REST", async () => {
		const asViewer = await connect(G1, { token: viewer.accessToken, organizationId: bobAuthOrg });
		const asBob = await connect(G2, { token: bob.accessToken, organizationId: bobAuthOrg });
		sockets.push(asViewer, asBob);
		const listed = await call(asViewer, "auth-teams.list", {});
		expect(listed.data.rows.length).toBeGreaterThan(0);
		expect(await call(asViewer, "auth-teams.create", { name: "Sneaky" })).toMatchObject({
			status: 403,
			error: { code: "FORBIDDEN" }
		});
		expect(await call(asBob, "auth-teams.create", { name: "Socketed" })).toMatchObject({
			data: { name: "Socketed" }
		});
		expect(await call(asBob, "auth-teams.create", {})).toMatchObject({
			status: 422,
			error: { code: "VALIDATION_ERROR", fields: [expect.objectContaining({ field: "name" })] }
		});
		expect(await call(asBob, "auth-teams.get", { id: "00000000-0000-0000-0000-000000000000" })).toMatchObject({
			status: 404
		});
		expect((await call(asBob, 42 as any)).error.code).toBe("BAD_REQUEST");
	});

	test("socket.io: a flood is throttled per connection", async () => {
		// A user of its own: socket calls spend the per-user budget that later tests need for bob.
		const body = { email: "flood@example.com", password: "correct horse battery", name: "F" };
		const flooder = (await http(G1, "POST", "/api/auth/register", { body })).body;
		const s = await connect(G1, { token: flooder.accessToken, organizationId: flooder.organization.id });
		sockets.push(s);
		const results = await Promise.all(Array.from({ length: 80 }, () => call(s, "auth.me")));
		const limited = results.filter(
			r => r.error?.code === "RATE_LIMITED" || r.error?.code === "TOO_MANY_IN_FLIGHT"
		).length;
		expect(limited).toBeGreaterThan(0);
		expect(results.filter(r => r.data).length).toBeGreaterThan(0);
	});

	test("rate limiting per user is shared by both gateway replicas (Redis)", async () => {
		const fresh = (
			await http(G1, "POST", "/api/auth/register", {
				body: { email: "limited@example.com", password: "correct horse battery", name: "L" }
			})
		).body;
		const statuses: number[] = [];
		let retryAfter: string | null = null;
		for (let i = 0; i < USER_LIMIT + 5; i++) {
			const r = await http(i % 2 ? G2 : G1, "GET", "/api/auth/me", { token: fresh.accessToken });
			statuses.push(r.status);
			if (r.status === 429) {
				retryAfter = r.headers.get("retry-after");
				expect(r.body.error.code).toBe("RATE_LIMITED");
			}
		}
		expect(statuses.filter(s => s === 200)).toHaveLength(USER_LIMIT);
		expect(statuses.filter(s => s === 429)).toHaveLength(5);
		expect(Number(retryAfter)).toBeGreaterThan(0);
	});

	test("the OpenAPI document validates and lists every public route", async () => {
		const doc = (await http(G2, "GET", "/api/openapi.json")).body;
		// ESM-only package: loaded with a real dynamic import.
		const { Validator } = await import("@seriousme/openapi-schema-validator");
		const result = await new Validator().validate(doc);
		expect(result.errors ?? []).toEqual([]);
		expect(result.valid).toBe(true);
		const aliases: any[] = await caller.call("gateway.listAliases", {}, { nodeID: `${namespace}-gw2` });
		const routed = aliases
			.filter(a => a.actionName && !a.actionName.startsWith("$"))
			.map(a => `${a.methods.toLowerCase()} ${a.fullPath.replace(/:(\w+)/g, "{$1}")}`);
		const documented = Object.entries(doc.paths).flatMap(([p, ops]: any) => Object.keys(ops).map(m => `${m} ${p}`));
		expect(routed.length).toBeGreaterThan(20);
		expect(documented.sort()).toEqual(expect.arrayContaining(routed));
		expect(documented).not.toContain("post /api/auth/resolve");
		expect(doc.paths["/api/auth/login"].post.security).toEqual([]);
		// The UI's types are generated from the document built without a server (npm run api-types): it says what
		// the served one says.
		const offline: any = openApiFromServices();
		for (const [p, ops] of Object.entries<any>(doc.paths))
			for (const [method, op] of Object.entries<any>(ops))
				expect([p, method, offline.paths[p]?.[method]]).toEqual([p, method, op]);
		for (const [name, schema] of Object.entries(doc.components.schemas))
			expect([name, offline.components.schemas[name]]).toEqual([name, schema]);
	});

	test("a dependency that does not answer gets a 503, not a hang", async () => {
		const auth = nodes[0];
		const token = bob.accessToken;
		expect((await http(G1, "GET", "/api/auth/me", { token, org: bobAuthOrg })).status).toBe(200);
		auth.proc.kill("SIGSTOP");
		try {
			const r = await http(G1, "GET", "/api/auth/me", { token, org: bobAuthOrg });
			expect(r).toMatchObject({ status: 503, body: { error: { code: "SERVICE_UNAVAILABLE" } } });
		} finally {
			auth.proc.kill("SIGCONT");
		}
	}, 30_000);
});
