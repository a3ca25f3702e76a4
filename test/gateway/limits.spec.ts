// Rate limits are one budget per client, whatever the transport: two gateway replicas (in this process, each with
// its own auth services) share Redis and one database, and a user's socket calls on either replica, their socket
// handshakes and their REST requests all spend the same per-user and per-IP counters. A user's open sockets are
// capped across replicas too.
import nodeHttp from "http";
import Redis from "ioredis";
import type { Socket } from "socket.io-client";
import { describeWith, createTestDatabase, uniqueNamespace, REDIS_URL } from "../helpers/infra";
import { createTestBroker } from "../helpers/broker";
import { waitUntil } from "../helpers/wait";
import { AUTH_FILES, GATEWAY_FILE, http, register, connect, call, Member } from "../helpers/gateway";

const USER_LIMIT = 20;
const IP_LIMIT = 40;
const SOCKETS_PER_USER = 3;

// A GET sent from another loopback address (Linux routes all of 127/8 to lo), as a second client would.
function getFrom(localAddress: string, port: number, path: string, token: string): Promise<number> {
	return new Promise((resolve, reject) => {
		const headers = { authorization: `Bearer ${token}` };
		const req = nodeHttp.request({ host: "127.0.0.1", port, path, localAddress, headers }, res => {
			res.resume();
			resolve(res.statusCode ?? 0);
		});
		req.once("error", reject);
		req.end();
	});
}

describeWith(["postgres", "redis"])("one budget per client over REST and sockets (two gateways, shared Redis)", () => {
	const namespace = uniqueNamespace("lim");
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let redis: Redis;
	const gateways: Awaited<ReturnType<typeof createTestBroker>>[] = [];
	let g1: number, g2: number;
	const sockets: Socket[] = [];

	const open = async (port: number, m: Member) => {
		const s = await connect(port, { token: m.accessToken, organizationId: m.organization.id });
		sockets.push(s);
		return s;
	};
	// Every request here comes from 127.0.0.1, so they share one IP budget: each test starts with fresh windows
	// (whatever order the tests run in), and again after its own set-up where it counts exactly. The tests count
	// within one minute window: near the window's end (on Redis's clock, the limiter's) they wait for the next one,
	// or their hits would be split between two windows.
	const freshWindows = async () => {
		const [seconds] = await redis.time();
		const left = 60 - (Number(seconds) % 60);
		if (left < 15) await new Promise(r => setTimeout(r, left * 1000 + 50));
		const keys = await redis.keys(`${namespace}:ratelimit:*`);
		if (keys.length) await redis.del(...keys);
	};
	beforeEach(() => freshWindows());

	beforeAll(async () => {
		db = await createTestDatabase();
		redis = new Redis(REDIS_URL);
		const env = {
			DATABASE_URL: db.url,
			REDIS_URL,
			NAMESPACE: namespace,
			PORT: "0",
			HOST: "127.0.0.1",
			RATE_LIMIT_USER_PER_MINUTE: String(USER_LIMIT),
			RATE_LIMIT_IP_PER_MINUTE: String(IP_LIMIT),
			SOCKETS_PER_USER: String(SOCKETS_PER_USER)
		};
		for (let i = 0; i < 2; i++) gateways.push(await createTestBroker(env, [...AUTH_FILES, GATEWAY_FILE]));
		[g1, g2] = gateways.map(g => (g.broker.getLocalService("gateway") as any).server.address().port);
	}, 60_000);

	afterAll(async () => {
		for (const s of sockets) s.close();
		for (const g of gateways) await g.stop();
		await freshWindows();
		redis?.disconnect();
		await db?.drop();
	});

	test("socket calls over several sockets on both replicas spend the user's one budget, and REST sees it spent", async () => {
		const u = await register(g1, "busy@example.com");
		await freshWindows();
		const s = [await open(g1, u), await open(g2, u), await open(g1, u)];
		// 3 handshakes + 30 calls (10 per socket, within each socket's own burst allowance) against a budget of 20.
		const results = await Promise.all(s.flatMap(sock => Array.from({ length: 10 }, () => call(sock, "auth.me"))));
		const ok = results.filter(r => r.data);
		const limited = results.filter(r => r.error?.code === "RATE_LIMITED");
		expect(ok).toHaveLength(USER_LIMIT - s.length);
		expect(limited).toHaveLength(results.length - ok.length);
		expect(limited[0]).toMatchObject({ status: 429, retryAfter: expect.any(Number) });

		const rest = await http(g2, "GET", "/api/auth/me", { token: u.accessToken });
		expect(rest).toMatchObject({ status: 429, body: { error: { code: "RATE_LIMITED" } } });
		expect(Number(rest.headers.get("retry-after"))).toBeGreaterThan(0);
		// One counter in Redis for the user, whatever the transport or replica (a sliding window's hash; refused
		// requests are not counted).
		expect(Number(await redis.hget(`${namespace}:ratelimit:user:${u.user.id}`, "c"))).toBe(USER_LIMIT);
	});

	test("the user's sockets are capped across replicas; the next one is refused with a clear error until one closes", async () => {
		const u = await register(g1, "tabs@example.com");
		await freshWindows();
		const held = [await open(g1, u), await open(g2, u), await open(g1, u)];
		const refused = await connect(g2, { token: u.accessToken, organizationId: u.organization.id }).catch(e => e);
		expect(refused).toBeInstanceOf(Error);
		const message = expect.stringContaining(`at most ${SOCKETS_PER_USER}`);
		expect(refused.data).toMatchObject({ status: 429, code: "TOO_MANY_CONNECTIONS", message });
		// Another user is not affected.
		const other = await register(g2, "other@example.com");
		await open(g2, other);

		// Closing a socket on one replica frees its place for a socket on the other.
		held[0].close();
		const reopen = () => connect(g2, { token: u.accessToken, organizationId: u.organization.id });
		sockets.push(await waitUntil("the closed socket's place to be free", reopen, s => s.connected, 5000, 50));
	});

	test("handshakes count against the per-IP budget, before credentials are checked; REST shares it", async () => {
		const u = await register(g1, "late@example.com");
		await freshWindows();
		// Credential-less handshakes are refused (401) but still spend the IP's budget.
		const handshakes = Array.from({ length: IP_LIMIT }, (_, i) => connect(i % 2 ? g1 : g2, {}).catch(e => e));
		const anonymous = await Promise.all(handshakes);
		expect(anonymous.map(e => e.data?.code)).toEqual(Array(IP_LIMIT).fill("UNAUTHORIZED"));
		const refused = await connect(g1, { token: u.accessToken, organizationId: u.organization.id }).catch(e => e);
		expect(refused.data).toMatchObject({ status: 429, code: "RATE_LIMITED", retryAfter: expect.any(Number) });
		expect((await http(g2, "GET", "/api/auth/me", { token: u.accessToken })).status).toBe(429);
	});

	test("REST alone: past the per-IP budget the next request is a 429 with Retry-After on either replica", async () => {
		const u = await register(g1, "rest-ip@example.com");
		await freshWindows();
		// Anonymous requests (401) spend the address's budget too: the limit comes before credentials.
		const spent = await Promise.all(
			Array.from({ length: IP_LIMIT }, (_, i) => http(i % 2 ? g1 : g2, "GET", "/api/auth/me"))
		);
		expect(spent.map(r => r.status)).toEqual(Array(IP_LIMIT).fill(401));
		for (const port of [g1, g2]) {
			// A forwarded-for header the client wrote itself does not buy a fresh budget.
			const headers = { "x-forwarded-for": "203.0.113.9" };
			const r = await http(port, "GET", "/api/auth/me", { token: u.accessToken, headers });
			expect(r).toMatchObject({ status: 429, body: { error: { code: "RATE_LIMITED" } } });
			const retryAfter = Number(r.headers.get("retry-after"));
			expect(retryAfter).toBeGreaterThan(0);
			// Sliding: a window filled at its start has room for one more when, in the next window, its weight has
			// dropped by one hit: at most a minute and 60 / IP_LIMIT seconds away.
			expect(retryAfter).toBeLessThanOrEqual(60 + Math.ceil(60 / IP_LIMIT));
		}
		// The same user from another address is not refused: the budget is the address's.
		expect(await getFrom("127.0.0.2", g1, "/api/auth/me", u.accessToken)).toBe(200);
	});

	test("REST as a known caller: each request spends the address's and the user's budgets together; past the user's the next is a 429", async () => {
		const u = await register(g1, "rest-user@example.com");
		await freshWindows();
		const statuses: number[] = [];
		// Sequential, alternating replicas: after its first request each gateway has the identity cached.
		for (let i = 0; i <= USER_LIMIT; i++)
			statuses.push((await http(i % 2 ? g1 : g2, "GET", "/api/auth/me", { token: u.accessToken })).status);
		expect(statuses).toEqual([...Array(USER_LIMIT).fill(200), 429]);
		// Both counters hold every admitted request, the refused one in neither.
		expect(Number(await redis.hget(`${namespace}:ratelimit:user:${u.user.id}`, "c"))).toBe(USER_LIMIT);
		expect(Number(await redis.hget(`${namespace}:ratelimit:ip:127.0.0.1`, "c"))).toBe(USER_LIMIT);
	});

	test("metrics are not served on the public port without METRICS_TOKEN", async () => {
		await freshWindows();
		expect((await http(g1, "GET", "/metrics")).status).toBe(404);
	});
});
