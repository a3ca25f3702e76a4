// What the gateway does with hostile or broken input, over real HTTP and socket.io against real PostgreSQL:
// cached lists never depend on who asked first, malformed input is a 4xx naming the problem (never a 500), client
// text in the log is escaped, and /metrics on the public port is for the holder of the metrics token only.
import os from "os";
import zlib from "zlib";
import type { Socket } from "socket.io-client";
import type { Context } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { startGateway, http, register, connect, call, TestGateway, Member } from "../helpers/gateway";
import { logSafe } from "../../lib/log-safe";

const METRICS_TOKEN = "metrics-token-metrics-token-0123456789";
const PROBE = "probe-param-7f3a9c";

// A service that fails the way a buggy handler does: its 500 message quotes what the client sent.
const ProbeService = {
	name: "probe",
	settings: { rest: "/probe" },
	actions: {
		fail: {
			rest: "POST /fail",
			permission: "public",
			params: { text: "string" },
			handler(ctx: Context<{ text: string }>) {
				throw new Error(`cannot handle ${ctx.params.text}`);
			}
		},
		echo: {
			rest: "POST /echo",
			permission: "public",
			handler(ctx: Context<Record<string, unknown>>) {
				return { keys: Object.keys(ctx.params) };
			}
		}
	}
};

const deep = (n: number) => "[".repeat(n) + "]".repeat(n);

describeWith(["postgres"])("gateway input handling (in-process gateway, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	let owner: Member, viewer: Member, org: string;
	const sockets: Socket[] = [];
	const asOwner = () => ({ token: owner.accessToken, org });
	const asViewer = () => ({ token: viewer.accessToken, org });

	beforeAll(async () => {
		db = await createTestDatabase();
		gw = await startGateway({ DATABASE_URL: db.url, NODE_ID: "input-gw-1", METRICS_TOKEN }, [
			"services/ai/providers.service.ts"
		]);
		gw.broker.createService(ProbeService as any);
		await gw.broker.waitForServices(["probe"]);
		// Routes of a service created after start appear with the next alias regeneration.
		const routed = async () => (await http(gw.port, "POST", "/api/probe/echo", { body: {} })).status !== 404;
		for (let i = 0; i < 100 && !(await routed()); i++) await new Promise(r => setTimeout(r, 100));
		owner = await register(gw.port, "owner@example.com");
		viewer = await register(gw.port, "viewer@example.com");
		org = owner.organization.id;
		const body = { email: "viewer@example.com", role: "viewer" };
		const added = await http(gw.port, "POST", `/api/auth/organizations/${org}/members`, { ...asOwner(), body });
		expect(added.status).toBe(200);
	}, 60_000);

	afterAll(async () => {
		for (const s of sockets) s.close();
		await gw?.stop();
		await db?.drop();
	});

	describe("cached lists", () => {
		test("a viewer's ?fields=id never changes what the next caller of a list or get receives", async () => {
			for (const name of ["Core", "Web"])
				expect((await http(gw.port, "POST", "/api/auth/teams", { ...asOwner(), body: { name } })).status).toBe(
					200
				);
			const body = { name: "Local", base_url: "https://llm.example.com/v1" };
			const provider = await http(gw.port, "POST", "/api/ai/providers", { ...asOwner(), body });
			expect(provider.status).toBe(200);

			for (const base of ["/api/auth/teams", "/api/ai/providers", `/api/ai/providers/${provider.body.id}`]) {
				const narrow = await http(gw.port, "GET", `${base}?fields=id`, asViewer());
				expect(narrow.status).toBe(200);
				const narrowRows = narrow.body.rows ?? [narrow.body];
				expect(Object.keys(narrowRows[0])).toEqual(["id"]);
				for (const who of [asOwner(), asViewer()]) {
					const full = await http(gw.port, "GET", base, who);
					expect(full.status).toBe(200);
					for (const row of full.body.rows ?? [full.body])
						expect([base, row.name]).toEqual([base, expect.any(String)]);
				}
				const excluded = await http(gw.port, "GET", `${base}?excludeFields=name`, asViewer());
				for (const row of excluded.body.rows ?? [excluded.body]) expect(row.name).toBeUndefined();
				// A parameter the action does not declare is not part of the key, and the handler never sees it.
				const extra = await http(gw.port, "GET", `${base}?unknown=1`, asViewer());
				expect(extra.status).toBe(200);
			}
		});
	});

	describe("malformed input is a 4xx naming the problem, in the one error shape", () => {
		const list = (query: string) => http(gw.port, "GET", `/api/auth/teams?${query}`, asOwner());

		test("query that is not JSON, or not an object of column values", async () => {
			for (const q of ["{not json", "[1,2]", "42", '"text"', '{"name":{"$gt":"a"}}', '{"name":[["a"]]}']) {
				const r = await list(`query=${encodeURIComponent(q)}`);
				expect([q, r.status, r.body.error?.code]).toEqual([q, 422, "VALIDATION_ERROR"]);
				expect(r.body.error.fields.map((f: any) => f.field)).toEqual([expect.stringMatching(/^query/)]);
			}
			expect((await list(`query=${encodeURIComponent('{"name":"Core"}')}`)).body.rows).toHaveLength(1);
		});

		test("values PostgreSQL refuses for their column (uuid, timestamp, NUL byte) are 422, not 500", async () => {
			const refused = [
				'{"id":"not-a-uuid"}',
				'{"id":["00000000-0000-0000-0000-000000000000","x"]}',
				'{"created_at":"yesterday-ish"}',
				'{"name":"a\\u0000b"}'
			];
			for (const q of refused) {
				const r = await list(`query=${encodeURIComponent(q)}`);
				expect([q, r.status, r.body.error?.code]).toEqual([q, 422, "VALIDATION_ERROR"]);
				expect(r.body.error.message).toMatch(/query/);
				expect(r.body.error.message).not.toMatch(/SELECT|teams|organization_id/);
			}
		});

		test("page and offset beyond any real table are 422", async () => {
			const paths = [
				"/api/auth/teams?page=1e300",
				"/api/auth/teams/all?offset=1e300",
				"/api/auth/teams/all?limit=5&offset=1e20"
			];
			for (const path of paths) {
				const r = await http(gw.port, "GET", path, asOwner());
				expect([path, r.status, r.body.error?.code]).toEqual([path, 422, "VALIDATION_ERROR"]);
			}
		});

		test("a JSON body nested 100,000 deep is a 400, and so is a modestly deep one past the bound", async () => {
			for (const body of [deep(100_000), `{"name":${deep(65)}}`]) {
				const r = await http(gw.port, "POST", "/api/auth/teams", { ...asOwner(), raw: body });
				const error = { code: "JSON_TOO_DEEP", message: expect.stringMatching(/nest/) };
				expect(r).toMatchObject({ status: 400, body: { error } });
			}
			// Strings full of brackets are not nesting.
			const r = await http(gw.port, "POST", "/api/probe/echo", {
				raw: JSON.stringify({ a: deep(1000), b: { c: [[['\\"[']]] } })
			});
			expect(r).toMatchObject({ status: 200, body: { keys: ["a", "b"] } });
			const v1 = await http(gw.port, "POST", "/v1/chat/completions", {
				raw: deep(100_000),
				headers: { "x-api-key": "cide_nope" }
			});
			expect(v1).toMatchObject({ status: 400, body: { error: { type: "invalid_request_error" } } });
		});

		test("a gzip body that is not gzip is a 400; a gzip bomb is a 413; an unknown encoding a 415", async () => {
			const post = (raw: string | Uint8Array, encoding: string) =>
				http(gw.port, "POST", "/api/auth/teams", {
					...asOwner(),
					raw,
					headers: { "content-encoding": encoding }
				});
			const garbage = await post(Buffer.from("definitely not gzip"), "gzip");
			const malformed = { code: "MALFORMED_BODY", message: expect.stringMatching(/Content-Encoding/) };
			expect(garbage).toMatchObject({ status: 400, body: { error: malformed } });
			const bomb = zlib.gzipSync(JSON.stringify({ name: "x".repeat(5_000_000) }));
			expect(bomb.length).toBeLessThan(100_000);
			expect(await post(bomb, "gzip")).toMatchObject({
				status: 413,
				body: { error: { code: "PAYLOAD_TOO_LARGE" } }
			});
			const good = await post(zlib.gzipSync(JSON.stringify({ name: "Zipped" })), "gzip");
			expect(good).toMatchObject({ status: 200, body: { name: "Zipped" } });
			const odd = await post("{}", "compress");
			expect(odd).toMatchObject({ status: 415, body: { error: { code: "UNSUPPORTED_ENCODING" } } });
		});

		test("oversize and wrong content types", async () => {
			const post = (raw: string, type = "application/json") =>
				http(gw.port, "POST", "/api/auth/teams", { ...asOwner(), raw, headers: { "content-type": type } });
			const big = await post(JSON.stringify({ name: "x".repeat(2_000_000) }));
			expect(big).toMatchObject({ status: 413, body: { error: { code: "PAYLOAD_TOO_LARGE" } } });
			const types = [
				"text/plain",
				"application/x-www-form-urlencoded",
				"application/jsonp",
				"multipart/form-data; boundary=x"
			];
			for (const type of types) {
				const r = await post('{"name":"x"}', type);
				expect([type, r.status, r.body.error?.code]).toEqual([type, 415, "UNSUPPORTED_MEDIA_TYPE"]);
			}
			expect((await post('{"name":"x"}', "application/json; charset=klingon")).status).toBe(415);
		});

		test("over the socket: deep params are refused, not crashed on", async () => {
			const s = await connect(gw.port, { token: owner.accessToken, organizationId: org });
			sockets.push(s);
			// Written as raw socket.io packets: the client library's own encoder recurses and would fail first.
			const rawCall = (id: number, paramsJson: string) =>
				new Promise<any>(resolve => {
					(s as any).acks[id] = resolve;
					(s as any).io.engine.write(`2${id}["call",{"action":"auth-teams.list","params":${paramsJson}}]`);
				});
			for (const [id, n] of [
				[9001, 100_000],
				[9002, 65]
			]) {
				const r = await rawCall(id, `{"query":{"name":${"[".repeat(n)}"x"${"]".repeat(n)}}}`);
				expect(r).toMatchObject({ status: 400, error: { code: "JSON_TOO_DEEP" } });
			}
			expect(await call(s, "auth-teams.list", { query: "{broken" })).toMatchObject({
				status: 422,
				error: { code: "VALIDATION_ERROR" }
			});
			expect((await call(s, "auth-teams.list", {})).data.rows.length).toBeGreaterThan(0);
		});
	});

	describe("the log", () => {
		test("client text in a log line is escaped: no forged lines, no terminal escapes", async () => {
			const forged =
				"x\n2030-01-01T00:00:00.000Z INFO  gateway: FORGED admin logged in\u001b[2J\u001b[31m\r\u2028";
			const r = await http(gw.port, "POST", "/api/probe/fail", { body: { text: forged } });
			expect(r).toMatchObject({
				status: 500,
				body: { error: { code: "INTERNAL_ERROR", message: "internal error" } }
			});
			await http(gw.port, "GET", "/api/%0AFORGED%1B%5B31m/x", asOwner());
			const deadline = Date.now() + 5000;
			const mentioned = () => gw.lines.filter(l => l.includes("FORGED")).length;
			while (mentioned() < 2 && Date.now() < deadline) await new Promise(res => setTimeout(res, 20));
			const mentions = gw.lines.filter(l => l.includes("FORGED"));
			expect(mentions.length).toBeGreaterThanOrEqual(2);
			// eslint-disable-next-line no-control-regex -- no control character may reach the log
			for (const line of mentions) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
			expect(mentions.some(l => l.includes("\\n2030-01-01") && l.includes("\\x1b[2J"))).toBe(true);
		});

		test("logSafe escapes control characters, Unicode line breaks and bidi overrides, and bounds the length", () => {
			expect(logSafe("a\nb\r\tc\u001b[0m\u0085\u2028\u202e\\")).toBe(
				"a\\nb\\r\\tc\\x1b[0m\\x85\\u2028\\u202e\\\\"
			);
			expect(logSafe("plain /api/teams?x=1 ünïcode")).toBe("plain /api/teams?x=1 ünïcode");
			expect(logSafe("y".repeat(5000)).length).toBeLessThanOrEqual(501);
			expect(logSafe(undefined)).toBe("undefined");
		});
	});

	describe("/metrics on the public port", () => {
		test("anonymous or with a wrong token: 401; with the metrics token: metrics without params, users or host details", async () => {
			await http(gw.port, "POST", "/api/probe/echo", { body: { marker: PROBE } });
			await http(gw.port, "GET", `/api/auth/teams?search=${PROBE}`, asOwner());
			expect((await http(gw.port, "GET", "/metrics")).status).toBe(401);
			expect(
				(await http(gw.port, "GET", "/metrics", { headers: { authorization: "Bearer wrong" } })).status
			).toBe(401);
			expect((await http(gw.port, "GET", "/metrics", { token: owner.accessToken })).status).toBe(401);
			const r = await http(gw.port, "GET", "/metrics", { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
			expect(r.status).toBe(200);
			expect(r.text).toMatch(/moleculer_request_total/);
			const forbidden = [
				PROBE,
				owner.user.id,
				viewer.user.id,
				org,
				"owner@example.com",
				os.hostname(),
				os.homedir()
			];
			for (const addrs of Object.values(os.networkInterfaces()))
				for (const a of addrs ?? []) if (!a.internal) forbidden.push(a.address, a.mac);
			for (const s of forbidden) expect([s, r.text.includes(s)]).toEqual([s, false]);
			expect(r.text).not.toMatch(/os_hostname|os_user_|os_network_|process_arguments/);
		});
	});
});
