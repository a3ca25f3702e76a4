// How AI calls travel: with the gateway in the same process (REST /v1 and the socket), a short request timeout
// (1 s) and token limits counted in real Redis. One organization's broken provider must not close AI for another; a
// completion slower than the request timeout reaches the upstream once and is answered; concurrent calls cannot
// spend a tokens-per-minute budget several times; and a deployment cannot name another organization's provider.
import crypto from "crypto";
import pg from "pg";
import type { AddressInfo } from "net";
import type { ServiceBroker } from "moleculer";
import { io, Socket } from "socket.io-client";
import { describeWith, createTestDatabase, uniqueNamespace, REDIS_URL } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { FakeOpenAI } from "../helpers/fake-openai";
import { AI_STACK, ask, drain } from "../helpers/ai";

const FILES = [...AI_STACK, "services/gateway/gateway.service.ts"];
// Setting up (argon2 hashing, provider checks) may take longer than the 1 s the calls under test get.
const SETUP = { timeout: 30_000 };
const SLOW_MS = 2500;
async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000) {
	const deadline = Date.now() + timeoutMs;
	while (!(await check())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise(r => setTimeout(r, 25));
	}
}

describeWith(["postgres", "redis"])("AI calls: isolation, timeouts, token budgets, references", () => {
	const up = new FakeOpenAI();
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let sql: pg.Client;
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	let base: string;
	// Organization A has a provider at a dead address; B a healthy one.
	let a: { owner: any; auth: any; provider: any };
	let b: { owner: any; auth: any; provider: any };

	const setup = (action: string, params: any, who: any) =>
		broker.call<any, any>(action, params, { ...as(who), ...SETUP });
	const rows = async (requestId: string) =>
		(await sql.query("SELECT status FROM ai_completion_logs WHERE request_id = $1", [requestId])).rows;
	const seen = (content: string) =>
		up.requests.filter(r => r.body.messages?.some((m: any) => m.content === content)).length;
	const ai = () => broker.getLocalService("ai") as any;
	const aiIdle = () => until(() => ai().inFlight.size === 0, "the AI service to finish its requests");

	async function organization(email: string, baseUrl: string) {
		const owner: any = await broker.call(
			"auth.register",
			{ email, password: "correct horse battery", name: email },
			SETUP
		);
		const creds = { token: owner.accessToken, organizationId: owner.organization.id };
		const auth = await broker.call("auth.resolve", creds, SETUP);
		const provider = await setup(
			"ai-providers.create",
			{ name: "main", base_url: baseUrl, timeout_ms: 10_000 },
			auth
		);
		return { owner, auth, provider };
	}

	beforeAll(async () => {
		const upstream = await up.start();
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		// The fake upstreams are on loopback, which providers may reach only when the operator allows it.
		const env = {
			DATABASE_URL: db.url,
			REDIS_URL,
			NAMESPACE: uniqueNamespace("ai-calls"),
			AI_LOG_BATCH_MS: "0",
			AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1"
		};
		const t = await createTestBroker({ ...env, REQUEST_TIMEOUT: "1000", PORT: "0", HOST: "127.0.0.1" }, FILES);
		broker = t.broker;
		stop = t.stop;
		base = `http://127.0.0.1:${((broker.getLocalService("gateway") as any).server.address() as AddressInfo).port}`;
		a = await organization("calls-a@example.com", "http://127.0.0.1:9/v1");
		b = await organization("calls-b@example.com", upstream);
		await setup(
			"ai-deployments.create",
			{ provider_id: a.provider.id, name: "broken", provider_model: "nowhere" },
			a.auth
		);
		for (const name of ["healthy", "slow", "counted"])
			await setup(
				"ai-deployments.create",
				{ provider_id: b.provider.id, name, provider_model: `up-${name}` },
				b.auth
			);
	}, 120_000);

	afterAll(async () => {
		await stop?.();
		await up.stop();
		await sql?.end();
		await db?.drop();
	});

	beforeEach(() => up.reset());

	const v1 = (body: unknown, who = b) =>
		fetch(`${base}/v1/chat/completions`, {
			method: "POST",
			headers: {
				authorization: `Bearer ${who.owner.accessToken}`,
				"x-organization-id": who.owner.organization.id,
				"content-type": "application/json"
			},
			body: JSON.stringify(body)
		});

	test("one organization's failing provider never changes another organization's answers", async () => {
		// More failures than the circuit breaker's minimum (20 requests, half failing) would need to open.
		const failures: any[] = [];
		for (let i = 0; i < 25; i++)
			failures.push(
				await broker.call("ai.complete", { model: "broken", ...ask(`fail ${i}`) }, as(a.auth)).catch(e => e)
			);
		const r: any = await broker.call("ai.complete", { model: "healthy", ...ask("still there?") }, as(b.auth));
		expect(r.choices[0].message.content).toBe("echo(up-healthy): still there?");
		const http = await v1({ model: "healthy", ...ask("over /v1") });
		expect(http.status).toBe(200);
		expect((await http.json()).choices[0].message.content).toBe("echo(up-healthy): over /v1");
		// A's own requests keep getting A's own error, not a closed endpoint.
		expect(failures.map(e => `${e.code} ${e.type}`)).toEqual(Array(25).fill("502 UPSTREAM_FAILED"));
		const again = await v1({ model: "broken", ...ask("and A?") }, a);
		expect(again.status).toBe(502);
	});

	test("a completion slower than the request timeout reaches the upstream once and is answered, on every path", async () => {
		up.set("up-slow", { delayMs: SLOW_MS });
		const ids = { call: "slow-call", stream: "slow-stream", v1: "slow-v1", sse: "slow-sse", socket: "" };
		const slow = (content: string, requestId: string) => ({ model: "slow", ...ask(content), requestId });

		const direct = broker.call<any, any>("ai.complete", slow("direct", ids.call), as(b.auth));
		const streamed = broker.call<any, any>("ai.stream", slow("streamed", ids.stream), as(b.auth)).then(drain);
		const rest = v1(slow("rest", ids.v1)).then(async r => ({ status: r.status, body: await r.json() }));
		const sse = v1({ ...slow("sse", ids.sse), stream: true }).then(async r => ({
			status: r.status,
			text: await r.text()
		}));
		const socket: Socket = await new Promise((resolve, reject) => {
			const auth = { token: b.owner.accessToken, organizationId: b.owner.organization.id };
			const s = io(base, { path: "/socket.io", auth, transports: ["websocket"], reconnection: false });
			s.once("ready", () => resolve(s));
			s.once("connect_error", reject);
		});
		let socketText = "";
		socket.on("stream:start", ({ requestId }) => (ids.socket = requestId));
		socket.on("stream:data", ({ data }) => (socketText += data.choices?.[0]?.delta?.content ?? ""));
		const socketDone = new Promise<any>((resolve, reject) => {
			socket.once("stream:end", resolve);
			socket.once("stream:error", reject);
		});
		const chat = { id: "slow-socket", action: "ai.stream", params: { model: "slow", ...ask("socket") } };
		const ack: any = await new Promise(r => socket.emit("stream", chat, r));
		try {
			expect(ack).toEqual({ data: { id: "slow-socket" } });
			expect(ids.socket).toMatch(/^[0-9a-f-]{36}$/);
			expect((await direct).choices[0].message.content).toBe("echo(up-slow): direct");
			expect((await streamed).at(-1)).toMatchObject({ done: true });
			expect(await rest).toMatchObject({
				status: 200,
				body: { choices: [{ message: { content: "echo(up-slow): rest" } }] }
			});
			const events = await sse;
			expect(events.status).toBe(200);
			expect(events.text).toContain("data: [DONE]");
			await socketDone;
			expect(socketText).toBe("echo(up-slow): socket");
		} finally {
			socket.close();
		}

		await aiIdle();
		for (const content of ["direct", "streamed", "rest", "sse", "socket"])
			expect([content, seen(content)]).toEqual([content, 1]);
		for (const id of Object.values(ids)) expect([id, await rows(id)]).toEqual([id, [{ status: "success" }]]);
	});

	test("a stream whose upstream falls silent after its first token ends in a timeout error, not a hang", async () => {
		await sql.query("UPDATE ai_providers SET timeout_ms = 300 WHERE id = $1", [b.provider.id]);
		broker.broadcast("ai.config.changed", { organizationId: b.owner.organization.id });
		await until(() => !ai().orgConfigs.has(b.owner.organization.id), "the configuration to be dropped");
		try {
			up.set("up-slow", { chunkDelayMs: 1000, content: "one two three" });
			const stream: any = await broker.call(
				"ai.stream",
				{ model: "slow", ...ask("silence"), requestId: "idle-1" },
				as(b.auth)
			);
			const lines = await drain(stream);
			expect(lines.at(-1).error).toMatchObject({ code: "timeout" });
			expect(lines.some(l => l.done)).toBe(false);
			await aiIdle();
			expect(await rows("idle-1")).toEqual([{ status: "error" }]);
		} finally {
			await sql.query("UPDATE ai_providers SET timeout_ms = 10000 WHERE id = $1", [b.provider.id]);
			broker.broadcast("ai.config.changed", { organizationId: b.owner.organization.id });
		}
	});

	test("concurrent calls cannot spend a tokens-per-minute budget more than once (Redis)", async () => {
		// Each call: a prompt of 10 tokens and an answer of 10, with max_tokens 10 declared.
		up.set("up-counted", { content: "x".repeat(40) });
		const perMinute = { scope: "model", model: "counted", tokens_per_minute: 100 };
		const limit = await setup("ai-rate-limits.create", perMinute, b.auth);
		try {
			// The budget is a clock-aligned minute: start well inside one, so that every call meets the same window.
			const left = 60_000 - (Date.now() % 60_000);
			if (left < 8000) await new Promise(r => setTimeout(r, left + 50));
			const burst = (i: number, extra: Record<string, unknown> = {}) => {
				const params = { model: "counted", ...ask(`burst ${String(i).padStart(2, "0")}`), ...extra };
				return broker.call<any, any>("ai.complete", params, as(b.auth));
			};
			const results = await Promise.allSettled(
				Array.from({ length: 20 }, (_, i) => burst(i, { max_tokens: 10 }))
			);
			const admitted = results
				.filter(r => r.status === "fulfilled")
				.map(r => (r as PromiseFulfilledResult<any>).value);
			const refused = results.filter(r => r.status === "rejected").map(r => (r as PromiseRejectedResult).reason);
			const spent = admitted.reduce((n, r) => n + r.usage.total_tokens, 0);
			expect(admitted[0].usage.total_tokens).toBe(20);
			expect(spent).toBeLessThanOrEqual(100);
			expect(admitted.length).toBe(5);
			expect(refused).toHaveLength(15);
			for (const e of refused) {
				const data = { scope: "model:counted", limit: "tokens_per_minute", perMinute: 100 };
				expect(e).toMatchObject({ code: 429, type: "RATE_LIMITED", data });
				expect(e.message).toMatch(
					/^rate limit exceeded \(model:counted\): 100 tokens per minute; retry in \d+s$/
				);
			}
			await expect(burst(99)).rejects.toMatchObject({ code: 429 });
		} finally {
			await setup("ai-rate-limits.remove", { id: limit.id }, b.auth);
		}
	});

	test("a reservation larger than what a call used is given back when it settles", async () => {
		up.set("up-counted", { content: "x".repeat(40) });
		const limit = await setup("ai-rate-limits.create", { scope: "user", tokens_per_minute: 100 }, b.auth);
		try {
			const left = 60_000 - (Date.now() % 60_000);
			if (left < 8000) await new Promise(r => setTimeout(r, left + 50));
			// Declaring 1000 output tokens reserves more than the whole budget: alone in the window it may run, and
			// the concurrent ones wait for it.
			const big = (i: number) =>
				broker.call("ai.complete", { model: "counted", ...ask(`big ${i}`), max_tokens: 1000 }, as(b.auth));
			const calls = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => big(i)));
			expect(calls.filter(r => r.status === "fulfilled")).toHaveLength(1);
			// It used 20 tokens and gave the rest back: smaller calls fit again.
			const r: any = await broker.call("ai.complete", { model: "counted", ...ask("small one") }, as(b.auth));
			expect(r.usage.total_tokens).toBeLessThan(100);
		} finally {
			await setup("ai-rate-limits.remove", { id: limit.id }, b.auth);
		}
	});

	test("a deployment names only its own organization's provider; another's id gets the answer an unknown id gets", async () => {
		const attempt = (provider_id: string) =>
			setup("ai-deployments.create", { provider_id, name: "borrowed", provider_model: "x" }, a.auth).catch(
				(e: any) => ({
					code: e.code,
					type: e.type,
					message: e.message,
					data: e.data
				})
			);
		const onProviderId = [expect.objectContaining({ field: "provider_id" })];
		const foreign = await attempt(b.provider.id);
		const unknown = await attempt(crypto.randomUUID());
		expect(foreign).toEqual({
			code: 422,
			type: "VALIDATION_ERROR",
			message: expect.any(String),
			data: onProviderId
		});
		expect(unknown).toEqual(foreign);
		expect(await attempt("not-a-uuid")).toMatchObject({ code: 422, data: onProviderId });

		// Moving an existing deployment onto another organization's provider is refused the same way.
		const own = await setup(
			"ai-deployments.create",
			{ provider_id: a.provider.id, name: "own", provider_model: "x" },
			a.auth
		);
		const moved = await setup("ai-deployments.update", { id: own.id, provider_id: b.provider.id }, a.auth).catch(
			(e: any) => e
		);
		expect(moved).toMatchObject({ code: 422, data: onProviderId });
		const kept = await sql.query("SELECT provider_id FROM ai_deployments WHERE id = $1", [own.id]);
		expect(kept.rows[0].provider_id).toBe(a.provider.id);

		// The database holds the same rule for any writer that bypasses the service.
		const insert =
			"INSERT INTO ai_deployments (organization_id, provider_id, name, provider_model) VALUES ($1, $2, 'sneaky', 'x')";
		await expect(sql.query(insert, [a.owner.organization.id, b.provider.id])).rejects.toMatchObject({
			code: "23503"
		});
	});

	test("presets and fallback chains name models, resolved only among the organization's own deployments", async () => {
		// A names B's model "healthy" in a preset and as a fallback: neither reaches B's deployment.
		const preset = await setup("ai-presets.create", { name: "borrowing", model: "healthy" }, a.auth);
		const chain = await setup("ai-fallback-chains.create", { model: "broken", fallbacks: ["healthy"] }, a.auth);
		try {
			const complete = (model: string) => broker.call("ai.complete", { model, ...ask("anyone?") }, as(a.auth));
			await expect(complete("borrowing")).rejects.toMatchObject({ code: 404, type: "MODEL_NOT_FOUND" });
			await expect(complete("broken")).rejects.toMatchObject({ code: 502 });
			expect(up.count("up-healthy")).toBe(0);
		} finally {
			await setup("ai-presets.remove", { id: preset.id }, a.auth);
			await setup("ai-fallback-chains.remove", { id: chain.id }, a.auth);
		}
	});
});
