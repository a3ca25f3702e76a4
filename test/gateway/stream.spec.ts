// The socket's generic `stream` (services/gateway/socket-bridge.ts) with a module that is no AI (the demo-stream
// fixture): items of object and NDJSON streams, refusals exactly like `call`, cancellation reaching the service, the
// same rate limits as REST; and routes a module declares in its manifest, mounted by a gateway that names no module.
import fs from "fs";
import path from "path";
import type { Socket } from "socket.io-client";
import { describeWith, createTestDatabase, uniqueNamespace, REDIS_URL } from "../helpers/infra";
import { ROOT } from "../helpers/broker";
import { prometheusText } from "../../lib/metrics";
import { startGateway, TestGateway, http, register, connect, Member } from "../helpers/gateway";

const FIXTURES_DIR = path.join(ROOT, "test/fixtures/services");
const USER_LIMIT = 25;

type Outcome = { ack: any; items: unknown[]; end?: boolean; error?: any };

// Starts a stream and collects what it sends until it ends, fails, or `stopAfter` items arrived.
function stream(s: Socket, id: string, action: string, params: unknown = {}, stopAfter = Infinity): Promise<Outcome> {
	return new Promise(resolve => {
		const out: Outcome = { ack: undefined, items: [] };
		const done = () => {
			s.off("stream:data", onData).off("stream:end", onEnd).off("stream:error", onError);
			resolve(out);
		};
		const onData = (m: any) => m.id === id && out.items.push(m.data) >= stopAfter && done();
		const onEnd = (m: any) => m.id === id && ((out.end = true), done());
		const onError = (m: any) => m.id === id && ((out.error = m), done());
		s.on("stream:data", onData).on("stream:end", onEnd).on("stream:error", onError);
		s.emit("stream", { id, action, params }, (ack: any) => {
			out.ack = ack;
			if (ack?.error) done();
		});
	});
}

async function until(check: () => boolean, what: string) {
	const deadline = Date.now() + 10_000;
	while (!check()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise(r => setTimeout(r, 20));
	}
}

describeWith(["postgres", "redis"])("the socket's generic stream protocol, and module routes", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let g: TestGateway;
	let owner: Member, viewer: Member;
	const sockets: Socket[] = [];
	const open = async (m: Member) => {
		const s = await connect(g.port, { token: m.accessToken, organizationId: owner.organization.id });
		sockets.push(s);
		return s;
	};
	const demo = () => g.broker.getLocalService("demo-stream") as any;

	beforeAll(async () => {
		db = await createTestDatabase();
		const env = {
			DATABASE_URL: db.url,
			REDIS_URL,
			NAMESPACE: uniqueNamespace("stream"),
			SERVICES_DIR: FIXTURES_DIR,
			RATE_LIMIT_USER_PER_MINUTE: String(USER_LIMIT)
		};
		g = await startGateway(env, ["test/fixtures/services/demo-stream/demo-stream.service.ts"]);
		owner = await register(g.port, "stream-owner@example.com");
		viewer = await register(g.port, "stream-viewer@example.com");
		const org = owner.organization.id;
		const added = await http(g.port, "POST", `/api/auth/organizations/${org}/members`, {
			token: owner.accessToken,
			org,
			body: { email: "stream-viewer@example.com", role: "viewer" }
		});
		expect(added.status).toBe(200);
	}, 60_000);

	// The last test stops the gateway's broker itself.
	let stopping: Promise<void> | undefined;

	afterAll(async () => {
		for (const s of sockets) s.close();
		await (stopping ?? g?.stop());
		await db?.drop();
	});

	test("an object stream's items arrive in order, then stream:end; an NDJSON stream's lines arrive as items", async () => {
		const s = await open(owner);
		const counted = await stream(s, "c1", "demo-stream.count", { n: 5 });
		expect(counted).toEqual({ ack: { data: { id: "c1" } }, items: [0, 1, 2, 3, 4].map(i => ({ i })), end: true });
		const lines = await stream(s, "l1", "demo-stream.lines");
		expect(lines).toEqual({ ack: { data: { id: "l1" } }, items: [{ line: 1 }, { line: 2 }], end: true });
		// The id is free again once its stream ended.
		expect((await stream(s, "c1", "demo-stream.count", { n: 1 })).end).toBe(true);
	});

	test("refused like `call`: the declared permission, validation, unknown and internal actions, bad ids", async () => {
		const s = await open(viewer);
		expect((await stream(s, "v1", "demo-stream.count", { n: 1 })).end).toBe(true);
		const denied = await stream(s, "v2", "demo-stream.lines");
		expect(denied).toMatchObject({ ack: { status: 403, error: { code: "FORBIDDEN" } }, items: [] });
		const invalid = await stream(s, "v3", "demo-stream.count", { n: "many" });
		expect(invalid.ack).toMatchObject({ status: 422, error: { code: "VALIDATION_ERROR" } });
		for (const action of ["demo-stream.nothing", "auth.resolve", "$node.list"])
			expect([action, (await stream(s, "v4", action)).ack.error.code]).toEqual([action, "NOT_FOUND"]);
		expect((await stream(s, "", "demo-stream.count", { n: 1 })).ack.error.code).toBe("BAD_REQUEST");
		expect((await stream(s, "x".repeat(101), "demo-stream.count", { n: 1 })).ack.error.code).toBe("BAD_REQUEST");
	});

	test("a stream that fails midway ends in stream:error with the platform's error", async () => {
		const s = await open(owner);
		const broken = await stream(s, "b1", "demo-stream.broken");
		expect(broken.items).toEqual([{ i: 0 }]);
		expect(broken.error).toMatchObject({
			id: "b1",
			status: 502,
			error: { code: "UPSTREAM_FAILED", message: "the counter broke" }
		});
	});

	test("cancel stops a running stream in the service that runs it, and frees its id", async () => {
		const s = await open(owner);
		const first = await stream(s, "k1", "demo-stream.count", { n: 10_000, everyMs: 5 }, 3);
		expect(first.items.length).toBe(3);
		const before = demo().cancelled.length;
		const ack = await new Promise<any>(r => s.emit("cancel", { id: "k1" }, r));
		expect(ack).toEqual({ data: { id: "k1" } });
		await until(() => demo().cancelled.length > before, "the service to hear the cancellation");
		expect(demo().running.size).toBe(0);
		expect(await new Promise<any>(r => s.emit("cancel", { id: "k1" }, r))).toMatchObject({
			error: { code: "NOT_FOUND" }
		});
		// A socket that goes away cancels what it still streams.
		const other = await open(owner);
		await stream(other, "k2", "demo-stream.count", { n: 10_000, everyMs: 5 }, 1);
		other.close();
		await until(
			() => demo().cancelled.length > before + 1 && demo().running.size === 0,
			"the disconnect to cancel"
		);
	});

	test("a stream spends the same per-user budget as REST", async () => {
		const fresh = await register(g.port, "stream-budget@example.com");
		const s = await connect(g.port, { token: fresh.accessToken, organizationId: fresh.organization.id });
		sockets.push(s);
		let refused: any;
		for (let i = 0; i < USER_LIMIT + 1 && !refused; i++) {
			const r = await stream(s, `r${i}`, "demo-stream.count", { n: 1 });
			if (r.ack?.status === 429) refused = r.ack;
		}
		expect(refused).toMatchObject({ status: 429, error: { code: "RATE_LIMITED" } });
		expect((await http(g.port, "GET", "/api/auth/me", { token: fresh.accessToken })).status).toBe(429);
	});

	test("a module's manifest routes are mounted with the gateway's credentials and body rules", async () => {
		const asOwner = { token: owner.accessToken, org: owner.organization.id };
		const echoed = await http(g.port, "POST", "/demo-stream/echo", { ...asOwner, body: { hello: "route" } });
		expect(echoed).toMatchObject({ status: 200, body: { echo: { hello: "route" }, userId: owner.user.id } });
		// Without credentials the request goes on anonymous: the actions it calls refuse it (as /api's do).
		expect((await http(g.port, "POST", "/demo-stream/echo", { body: {} })).body).toEqual({
			echo: {},
			userId: null,
			via: "direct"
		});
		const forged = await http(g.port, "POST", "/demo-stream/echo", { token: "forged", body: {} });
		expect(forged).toMatchObject({ status: 401, body: { error: { code: "UNAUTHORIZED" } } });
		const deep = "[".repeat(100) + "]".repeat(100);
		expect((await http(g.port, "POST", "/demo-stream/echo", { ...asOwner, raw: deep })).body.error.code).toBe(
			"JSON_TOO_DEEP"
		);
	});

	test("a route's direct aliases answer as moleculer-web would, without its pipeline; a browser's request takes it", async () => {
		const asOwner = { token: owner.accessToken, org: owner.organization.id };
		// The same request without and with an Origin (a browser's, answered by moleculer-web for CORS).
		const both = async (opts: Parameters<typeof http>[3]) => {
			const direct = await http(g.port, "POST", "/demo-stream/echo", opts);
			const browser = await http(g.port, "POST", "/demo-stream/echo", {
				...opts,
				headers: { ...opts?.headers, origin: "http://127.0.0.1" }
			});
			return { direct, browser };
		};
		const same = ({ direct, browser }: { direct: any; browser: any }) => {
			expect([direct.status, direct.body]).toEqual([browser.status, browser.body]);
			return direct;
		};

		// Either way the request is counted under its mount and status (gateway_http_requests_total).
		const counted = (status: number) =>
			Number(
				prometheusText(g.broker).match(
					new RegExp(
						`^gateway_http_requests_total\\{[^}]*route="demo-stream",status="${status}"[^}]*\\} (\\d+)$`,
						"m"
					)
				)?.[1] ?? 0
			);
		const [ok200, was401] = [counted(200), counted(401)];
		const ok = await both({ ...asOwner, body: { hello: "direct" } });
		expect(ok.direct.body).toEqual({ echo: { hello: "direct" }, userId: owner.user.id, via: "direct" });
		expect(ok.browser.body).toEqual({ echo: { hello: "direct" }, userId: owner.user.id, via: "gateway.rest" });
		expect(counted(200)).toBe(ok200 + 2);
		expect(counted(401)).toBe(was401);
		expect(prometheusText(g.broker)).toMatch(
			/^gateway_http_request_duration_bucket\{[^}]*route="demo-stream",le="\+Inf"\} [1-9]\d*$/m
		);
		for (const r of [ok.direct, ok.browser]) {
			expect(r.headers.get("x-content-type-options")).toBe("nosniff");
			expect(r.headers.get("x-request-id")).toBeTruthy();
		}
		// A request id given by the client is the call's, and answered back.
		const traced = await both({ ...asOwner, body: {}, headers: { "x-request-id": "trace-1" } });
		expect([traced.direct.headers.get("x-request-id"), traced.browser.headers.get("x-request-id")]).toEqual([
			"trace-1",
			"trace-1"
		]);

		// Refusals are the same either way: bad credentials, JSON that does not parse, nests too deep or is too large.
		expect(same(await both({ token: "forged", body: {} })).status).toBe(401);
		expect(counted(401)).toBe(was401 + 2);
		expect(same(await both({ ...asOwner, raw: "{not json" })).body.error.code).toBe("MALFORMED_JSON");
		const deep = "[".repeat(100) + "]".repeat(100);
		expect(same(await both({ ...asOwner, raw: deep })).body.error.code).toBe("JSON_TOO_DEEP");
		const large = JSON.stringify({ text: "x".repeat(1_100_000) });
		expect(same(await both({ ...asOwner, raw: large })).status).toBe(413);
		// A body that is not JSON is not parsed, on either path.
		const text = await both({ ...asOwner, raw: "hello", headers: { "content-type": "text/plain" } });
		expect([text.direct.status, text.direct.body.echo]).toEqual([text.browser.status, text.browser.body.echo]);
	});

	test("the gateway's code names no module: it imports only its own folder and lib/", () => {
		const dir = path.join(ROOT, "services/gateway");
		// auth is the one module the gateway depends on by design: it resolves credentials (auth.resolve, its events).
		const modules = fs.readdirSync(path.join(ROOT, "services")).filter(m => m !== "gateway" && m !== "auth");
		for (const file of fs.readdirSync(dir).filter(f => f.endsWith(".ts"))) {
			const source = fs.readFileSync(path.join(dir, file), "utf8");
			const imports = [...source.matchAll(/from "([^"]+)"/g)].map(m => m[1]).filter(i => i.startsWith("."));
			for (const i of imports)
				expect([file, i, /^\.\/|^\.\.\/\.\.\/(lib|package\.json)/.test(i)]).toEqual([file, i, true]);
			// Calls, events and routes by another module's name (`"ai.stream"`, `"ai:chat"`, "/v1") do not appear.
			for (const m of modules)
				expect([file, m, new RegExp(`["'\`/]${m}[.:/]`).test(source)]).toEqual([file, m, false]);
			expect([file, /\/v1\b|openai/i.test(source)]).toEqual([file, false]);
		}
	});
	// Last: it stops the broker.
	test("a stopping gateway lets its sockets' streams finish, refuses new calls (SHUTTING_DOWN), then disconnects them", async () => {
		const fresh = await register(g.port, "stream-drain@example.com");
		const creds = { token: fresh.accessToken, organizationId: fresh.organization.id };
		const s = await connect(g.port, creds);
		const probe = await connect(g.port, creds);
		sockets.push(s, probe);
		const running = stream(s, "long", "demo-stream.count", { n: 40, everyMs: 50 });
		await until(() => demo().running.size > 0, "the stream to start");
		const disconnected = new Promise(resolve => s.once("disconnect", resolve));
		stopping = g.stop();
		// A malformed call is refused before it is charged or run: BAD_REQUEST while the gateway serves, then
		// SHUTTING_DOWN once it stops.
		let refusal: any;
		while (refusal?.error?.code !== "SHUTTING_DOWN") {
			refusal = await new Promise(r => {
				const gone = () => r({ error: { code: "DISCONNECTED" } });
				probe.once("disconnect", gone);
				probe.emit("call", { action: 42 }, (ack: unknown) => (probe.off("disconnect", gone), r(ack)));
			});
			expect(["BAD_REQUEST", "SHUTTING_DOWN"]).toContain(refusal.error.code);
			if (refusal.error.code === "BAD_REQUEST") await new Promise(r => setTimeout(r, 100));
		}
		expect(refusal.status).toBe(503);
		// HTTP too: a new connection is refused (the port has closed), one kept alive gets SHUTTING_DOWN.
		const during = await http(g.port, "GET", "/api/auth/me", { token: fresh.accessToken }).then(
			r => `${r.status},${r.body?.error?.code}`,
			() => "refused"
		);
		expect(during).toMatch(/^refused$|^503,SHUTTING_DOWN$/);
		// Cut off, the stream would never end: the disconnect says so at once.
		const out = await Promise.race([
			running,
			disconnected.then((): Outcome => ({ ack: undefined, end: false, items: [] }))
		]);
		expect(out.end).toBe(true);
		expect(out.items).toEqual(Array.from({ length: 40 }, (_, i) => ({ i })));
		await stopping;
		await disconnected;
	});
});
