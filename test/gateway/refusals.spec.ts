// Refusals a client sees through a real gateway (in this process, real PostgreSQL, Redis as the cache): a socket
// whose identity stops being true is closed (logout, revoked API key, removed membership) while the user's other
// sockets stay; one organization's cached list is never served to another; organization B never sees A's
// completion logs.
import Redis from "ioredis";
import type { Socket } from "socket.io-client";
import { describeWith, createTestDatabase, uniqueNamespace, REDIS_URL } from "../helpers/infra";
import { startGateway, http, register, connect, call, TestGateway, Member } from "../helpers/gateway";
import { FakeOpenAI } from "../helpers/fake-openai";
import { waitUntil } from "../helpers/wait";

const AI_FILES = ["secrets/secrets", "ai/ai", "ai/providers", "ai/deployments"].map(s => `services/${s}.service.ts`);

describeWith(["postgres", "redis"])("refusals through a real gateway (Redis cache)", () => {
	const namespace = uniqueNamespace("ref");
	const up = new FakeOpenAI();
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let redis: Redis;
	let gw: TestGateway;
	let upstreamUrl: string;
	const sockets: Socket[] = [];

	const open = async (auth: Record<string, unknown>) => {
		const s = await connect(gw.port, auth);
		sockets.push(s);
		return s;
	};
	const closed = (s: Socket) =>
		waitUntil(
			"the socket to be closed by the server",
			async () => s.connected,
			c => !c,
			10_000,
			25
		);
	const login = async (email: string): Promise<Member> => {
		const r = await http(gw.port, "POST", "/api/auth/login", {
			body: { email, password: "correct horse battery" }
		});
		expect(r.status).toBe(200);
		return r.body;
	};

	beforeAll(async () => {
		upstreamUrl = await up.start();
		db = await createTestDatabase();
		redis = new Redis(REDIS_URL);
		const env = {
			DATABASE_URL: db.url,
			CACHER: REDIS_URL,
			REDIS_URL,
			NAMESPACE: namespace,
			AI_LOG_BATCH_MS: "0",
			AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1"
		};
		gw = await startGateway(env, AI_FILES);
	}, 60_000);

	afterAll(async () => {
		for (const s of sockets) s.close();
		await gw?.stop();
		await up.stop();
		if (redis) {
			const left = await redis.keys(`${namespace}*`);
			if (left.length) await redis.del(...left);
			redis.disconnect();
		}
		await db?.drop();
	});

	describe("sockets close when their identity stops being true", () => {
		test("logout closes the sockets of that session, not those of the user's other sessions", async () => {
			const first = await register(gw.port, "leaving@example.com");
			const second = await login("leaving@example.com");
			const org = first.organization.id;
			const ending = await open({ token: first.accessToken, organizationId: org });
			const staying = await open({ token: second.accessToken, organizationId: org });
			expect((await call(ending, "auth.me")).data).toBeTruthy();

			expect((await http(gw.port, "POST", "/api/auth/logout", { token: first.accessToken, org })).status).toBe(
				200
			);
			await closed(ending);
			// The other session's socket still works, and the ended session cannot open a new one.
			expect((await call(staying, "auth.me")).data).toMatchObject({ user: { id: first.user.id } });
			const again = await connect(gw.port, { token: first.accessToken, organizationId: org }).catch(e => e);
			expect(again.data).toMatchObject({ status: 401 });
		});

		test("revoking an API key closes the sockets opened with it, not those of the user's other keys", async () => {
			const owner = await register(gw.port, "keys@example.com");
			const org = owner.organization.id;
			const mint = async (name: string) => {
				const r = await http(gw.port, "POST", "/api/auth/api-keys", {
					token: owner.accessToken,
					org,
					body: { name }
				});
				expect(r.status).toBe(200);
				return r.body as { id: string; key: string };
			};
			const [ci, laptop] = [await mint("ci"), await mint("laptop")];
			const revoked = await open({ apiKey: ci.key });
			const kept = await open({ apiKey: laptop.key });
			const session = await open({ token: owner.accessToken, organizationId: org });
			expect((await call(revoked, "auth.me")).data).toBeTruthy();

			const r = await http(gw.port, "DELETE", `/api/auth/api-keys/${ci.id}`, { token: owner.accessToken, org });
			expect(r.status).toBe(200);
			await closed(revoked);
			expect((await call(kept, "auth.me")).data).toBeTruthy();
			expect((await call(session, "auth.me")).data).toBeTruthy();
			const again = await connect(gw.port, { apiKey: ci.key }).catch(e => e);
			expect(again.data).toMatchObject({ status: 401 });
		});

		test("a member removed from an organization loses the socket opened in it", async () => {
			const owner = await register(gw.port, "boss@example.com");
			const member = await register(gw.port, "temp@example.com");
			const org = owner.organization.id;
			const body = { email: "temp@example.com", role: "member" };
			const add = await http(gw.port, "POST", `/api/auth/organizations/${org}/members`, {
				token: owner.accessToken,
				org,
				body
			});
			expect(add.status).toBe(200);
			const inOrg = await open({ token: member.accessToken, organizationId: org });
			const inOwn = await open({ token: member.accessToken, organizationId: member.organization.id });
			const path = `/api/auth/organizations/${org}/members/${member.user.id}`;
			expect((await http(gw.port, "DELETE", path, { token: owner.accessToken, org })).status).toBe(200);
			await closed(inOrg);
			expect((await call(inOwn, "auth.me")).data).toBeTruthy();
		});
	});

	test("one organization's cached list is never served to another (Redis cache)", async () => {
		const a = await register(gw.port, "cache-a@example.com");
		const b = await register(gw.port, "cache-b@example.com");
		const asA = { token: a.accessToken, org: a.organization.id };
		const asB = { token: b.accessToken, org: b.organization.id };
		expect((await http(gw.port, "POST", "/api/auth/teams", { ...asA, body: { name: "Alpha only" } })).status).toBe(
			200
		);
		expect((await http(gw.port, "POST", "/api/auth/teams", { ...asB, body: { name: "Beta only" } })).status).toBe(
			200
		);
		const names = (r: { body: any }) => r.body.rows.map((t: any) => t.name);

		// A reads first: its list is cached in Redis, keyed by A's organization.
		const listA = await http(gw.port, "GET", "/api/auth/teams", asA);
		expect([listA.status, names(listA)]).toEqual([200, ["Alpha only"]]);
		const listKeys = async () =>
			(await redis.keys(`${namespace}-cache*`)).filter(k => k.includes("auth-teams.list"));
		const [keyA, ...others] = await listKeys();
		expect(others).toEqual([]);
		// Mark A's entry behind the platform's back: whoever is served the marked entry was served from A's cache.
		const entry = JSON.parse((await redis.get(keyA))!);
		entry.rows[0].name = "served from A's cache";
		await redis.set(keyA, JSON.stringify(entry), "KEEPTTL");
		expect(names(await http(gw.port, "GET", "/api/auth/teams", asA))).toEqual(["served from A's cache"]);

		// B asks the same list with the same parameters: it reaches the cache (200), and gets its own entry.
		const listB = await http(gw.port, "GET", "/api/auth/teams", asB);
		expect([listB.status, names(listB)]).toEqual([200, ["Beta only"]]);
		const keys = await listKeys();
		expect(keys).toHaveLength(2);
		expect(keyA).toContain(a.organization.id);
		expect(keys.find(k => k !== keyA)).toContain(b.organization.id);
		// B naming A's organization is refused, never answered from A's entry.
		const cross = await http(gw.port, "GET", "/api/auth/teams", { token: b.accessToken, org: a.organization.id });
		expect(cross.status).toBe(403);
		expect(cross.text).not.toContain("served from A's cache");
	});

	test("organization B never sees A's completion logs: not listed, not by A's model or user, not with A's header", async () => {
		const a = await register(gw.port, "logs-a@example.com");
		const b = await register(gw.port, "logs-b@example.com");
		const asA = { token: a.accessToken, org: a.organization.id };
		const asB = { token: b.accessToken, org: b.organization.id };
		const body = { name: "fake", base_url: upstreamUrl };
		const provider = await http(gw.port, "POST", "/api/ai/providers", { ...asA, body });
		expect(provider.status).toBe(200);
		const model = { provider_id: provider.body.id, name: "a-private-model", provider_model: "m" };
		expect((await http(gw.port, "POST", "/api/ai/deployments", { ...asA, body: model })).status).toBe(200);
		const key = await http(gw.port, "POST", "/api/auth/api-keys", { ...asA, body: { name: "ide" } });
		const completion = await http(gw.port, "POST", "/v1/chat/completions", {
			token: key.body.key,
			body: { model: "a-private-model", messages: [{ role: "user", content: "secret plans" }] }
		});
		expect(completion.status).toBe(200);
		const mine = await waitUntil(
			"A's completion log row",
			() => http(gw.port, "GET", "/api/ai/logs", asA),
			r => r.body.rows?.length === 1
		);
		expect(mine.body.rows[0]).toMatchObject({ requested_model: "a-private-model", user_id: a.user.id });

		for (const query of ["", "?model=a-private-model", `?userId=${a.user.id}`, "?status=success&limit=500"]) {
			const r = await http(gw.port, "GET", `/api/ai/logs${query}`, asB);
			expect([query, r.status, r.body.rows, r.body.totals.requests]).toEqual([query, 200, [], 0]);
		}
		const cross = await http(gw.port, "GET", "/api/ai/logs", { token: b.accessToken, org: a.organization.id });
		expect(cross.status).toBe(403);
		expect(cross.text).not.toContain("a-private-model");
	});
});
