// Load shedding: past GATEWAY_MAX_IN_FLIGHT API requests in flight, a request is refused at once with 503 and
// Retry-After, in the error shape of the route it was for, and counted in the metrics; health is never refused; the
// requests taken are served; every slot is given back, also by a client that went away.
import path from "path";
import { describeWith, createTestDatabase, uniqueNamespace, REDIS_URL } from "../helpers/infra";
import { ROOT } from "../helpers/broker";
import { startGateway, TestGateway, http, register, Member } from "../helpers/gateway";
import { waitUntil } from "../helpers/wait";
import { EventEmitter } from "events";
import type { ServerResponse } from "http";
import { prometheusText } from "../../lib/metrics";
import { InFlightCap } from "../../services/gateway/load-shedding";

const CAP = 3;

describeWith(["postgres", "redis"])("load shedding at the gateway", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let g: TestGateway;
	let owner: Member;
	const demo = () => g.broker.getLocalService("demo-stream") as unknown as { waiting: (() => void)[] };
	const inFlight = () => (g.broker.getLocalService("gateway") as any).inFlight.inFlight as number;
	const asOwner = () => ({ token: owner.accessToken, org: owner.organization.id });
	const held = async (n: number) =>
		waitUntil(
			"held requests",
			async () => demo().waiting.length,
			x => x === n
		);
	const releaseAll = () =>
		demo()
			.waiting.splice(0)
			.forEach(release => release());

	beforeAll(async () => {
		db = await createTestDatabase();
		const env = {
			DATABASE_URL: db.url,
			REDIS_URL,
			NAMESPACE: uniqueNamespace("shed"),
			SERVICES_DIR: path.join(ROOT, "test/fixtures/services"),
			GATEWAY_MAX_IN_FLIGHT: String(CAP)
		};
		const files = [
			"services/gateway/health.service.ts",
			"test/fixtures/services/demo-stream/demo-stream.service.ts"
		];
		g = await startGateway(env, files);
		owner = await register(g.port, "shed-owner@example.com");
	}, 60_000);

	afterAll(async () => {
		releaseAll();
		await g?.stop();
		await db?.drop();
	});

	test("over the cap: 503 with Retry-After at once, health still answers, the requests taken succeed", async () => {
		const taken = [1, 2, 3].map(() => http(g.port, "GET", "/api/demo-stream/wait", asOwner()));
		await held(CAP);
		expect(inFlight()).toBe(CAP);

		const refused = await http(g.port, "GET", "/api/demo-stream/wait", asOwner());
		expect(refused.status).toBe(503);
		expect(refused.headers.get("retry-after")).toBe("1");
		expect(refused.body).toEqual({
			error: { code: "OVERLOADED", message: "the server is at capacity; retry after 1 s" }
		});
		// Refused before authentication, rate limits or the action: nothing more was started.
		expect(demo().waiting.length).toBe(CAP);
		// A route with its own error shape answers in it.
		const own = await http(g.port, "GET", "/demo-own-errors/wait", asOwner());
		expect(own.status).toBe(503);
		expect(own.headers.get("retry-after")).toBe("1");
		expect(own.body).toEqual({ failure: { status: 503, reason: "the server is at capacity; retry after 1 s" } });
		// Liveness and readiness are never shed, nor counted.
		expect((await http(g.port, "GET", "/api/health")).status).toBe(200);
		expect((await http(g.port, "GET", "/api/health/ready")).status).not.toBe(503);
		expect(inFlight()).toBe(CAP);
		expect(prometheusText(g.broker)).toMatch(/^gateway_requests_shed_total\{[^}]*\} 2$/m);

		releaseAll();
		for (const r of await Promise.all(taken)) expect([r.status, r.body]).toEqual([200, { waited: true }]);
		await waitUntil(
			"no request in flight",
			async () => inFlight(),
			n => n === 0
		);
		// Room again.
		const after = http(g.port, "GET", "/api/demo-stream/wait", asOwner());
		await held(1);
		releaseAll();
		expect((await after).status).toBe(200);
	});

	test("a client that goes away gives its slot back", async () => {
		const aborts = [1, 2, 3].map(() => new AbortController());
		const headers = { authorization: `Bearer ${owner.accessToken}`, "x-organization-id": owner.organization.id };
		const gone = aborts.map(a =>
			fetch(`http://127.0.0.1:${g.port}/api/demo-stream/wait`, { headers, signal: a.signal }).catch(
				() => "aborted"
			)
		);
		await held(CAP);
		expect((await http(g.port, "GET", "/api/demo-stream/wait", asOwner())).status).toBe(503);
		aborts.forEach(a => a.abort());
		expect(await Promise.all(gone)).toEqual(["aborted", "aborted", "aborted"]);
		await waitUntil(
			"slots given back",
			async () => inFlight(),
			n => n === 0
		);
		releaseAll();
		const next = http(g.port, "GET", "/api/demo-stream/wait", asOwner());
		await held(1);
		releaseAll();
		expect((await next).status).toBe(200);
		await waitUntil(
			"no request in flight",
			async () => inFlight(),
			n => n === 0
		);
	});
});

describe("the in-flight cap without metrics", () => {
	test("counts, refuses past the cap, frees a slot on close, and says when none is left", async () => {
		const cap = new InFlightCap(1);
		const res = () => new EventEmitter() as unknown as ServerResponse;
		const first = res();
		expect(cap.enter(first)).toBe(true);
		expect(cap.enter(res())).toBe(false);
		const drained = cap.drained(10_000);
		expect(await cap.drained(10)).toBe(false);
		first.emit("close");
		expect(await drained).toBe(true);
		expect(cap.inFlight).toBe(0);
		expect(cap.enter(res())).toBe(true);
	});
});
