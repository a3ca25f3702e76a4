// The AI gateway in one process against real PostgreSQL, with the real openai SDK calling a fake upstream on
// 127.0.0.1 that can be slow, fail, hang, or cut a stream.
import fs from "fs";
import http from "http";
import path from "path";
import type { AddressInfo } from "net";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { FakeOpenAI } from "../helpers/fake-openai";
import { getDb } from "../../lib/db";
import { AI_STACK, ask, drain } from "../helpers/ai";

const FILES = AI_STACK;
const KEY_1 = "sk-provider-key-ONE-3b9c71";
const KEY_2 = "sk-provider-key-TWO-e40d18";
describeWith(["postgres"])("AI service", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	let sql: pg.Client;
	const up = new FakeOpenAI();
	let owner: any, auth: any, otherAuth: any, keySecret: any;

	const call = (action: string, params: any, who = auth) => broker.call<any, any>(action, params, as(who));
	const logs = async (requestId?: string) =>
		(
			await sql.query(
				`SELECT * FROM ai_completion_logs ${requestId ? "WHERE request_id = $1" : ""} ORDER BY created_at`,
				requestId ? [requestId] : []
			)
		).rows;
	const outboxTypes = async () =>
		(await sql.query("SELECT payload->>'type' AS type, payload FROM outbox ORDER BY created_at")).rows;

	beforeAll(async () => {
		const base = await up.start();
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		// The fake upstream is on loopback, which providers may reach only when the operator allows it.
		const t = await createTestBroker(
			{
				DATABASE_URL: db.url,
				CHANNELS_RETRY_BASE_MS: "10",
				AI_LOG_BATCH_MS: "0",
				AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1"
			},
			FILES
		);
		broker = t.broker;
		stop = t.stop;
		owner = await broker.call("auth.register", {
			email: "ai-owner@example.com",
			password: "correct horse battery",
			name: "Owner"
		});
		auth = await broker.call("auth.resolve", { token: owner.accessToken, organizationId: owner.organization.id });
		const other: any = await broker.call("auth.register", {
			email: "ai-other@example.com",
			password: "correct horse battery",
			name: "Other"
		});
		otherAuth = await broker.call("auth.resolve", {
			token: other.accessToken,
			organizationId: other.organization.id
		});

		keySecret = await call("secrets.create", { environment: "production", name: "FAKE_OPENAI_KEY", value: KEY_1 });
		const p1 = await call("ai-providers.create", {
			name: "primary",
			base_url: base,
			api_key_secret: "FAKE_OPENAI_KEY",
			timeout_ms: 400
		});
		const p2 = await call("ai-providers.create", {
			name: "secondary",
			base_url: base,
			api_key_secret: "FAKE_OPENAI_KEY",
			timeout_ms: 400
		});
		const dead = await call("ai-providers.create", {
			name: "unreachable",
			base_url: "http://127.0.0.1:9/v1",
			timeout_ms: 400
		});
		const price = { input_price: 2, output_price: 8, cached_input_price: 1 };
		await call("ai-deployments.create", {
			provider_id: p1.id,
			name: "smart",
			provider_model: "a-smart",
			priority: 1,
			...price
		});
		await call("ai-deployments.create", {
			provider_id: p2.id,
			name: "smart",
			provider_model: "b-smart",
			priority: 2,
			...price
		});
		await call("ai-deployments.create", {
			provider_id: p1.id,
			name: "backup",
			provider_model: "a-backup",
			...price
		});
		await call("ai-deployments.create", { provider_id: dead.id, name: "offline", provider_model: "x" });
		await call("ai-deployments.create", {
			provider_id: p1.id,
			name: "embedder",
			provider_model: "a-embed",
			kind: "embedding"
		});
		await call("ai-fallback-chains.create", { model: "smart", fallbacks: ["backup"], first_token_timeout_ms: 300 });
		await call("ai-fallback-chains.create", { model: "offline", fallbacks: ["backup"] });
		await call("ai-presets.create", {
			name: "reviewer",
			model: "smart",
			temperature: 0,
			system_prompt: "You review code."
		});
		await call("ai.configure", { cooldownSeconds: 1 });
	}, 60_000);

	// Each test starts with every deployment healthy (health is judged from live traffic, in memory).
	beforeEach(() => {
		up.reset();
		const ai: any = broker.getLocalService("ai");
		ai.health = new ai.health.constructor();
	});

	afterAll(async () => {
		await stop?.();
		await up.stop();
		await sql?.end();
		await db?.drop();
	});

	test("a completion goes to the preferred deployment with the provider key from the secrets service, and is logged with cost", async () => {
		const r = await call("ai.complete", { model: "smart", ...ask("hello"), temperature: 0.7 });
		expect(r.choices[0].message.content).toBe("echo(a-smart): hello");
		expect(r.model).toBe("smart");
		expect(up.requests[0].authorization).toBe(`Bearer ${KEY_1}`);
		const [row] = (await logs()).slice(-1);
		expect(row).toMatchObject({
			requested_model: "smart",
			served_model: "smart",
			status: "success",
			fallback_path: ["smart@primary:ok"]
		});
		expect(row.prompt_tokens).toBe(r.usage.prompt_tokens);
		expect(Number(row.cost)).toBeCloseTo((r.usage.prompt_tokens * 2 + r.usage.completion_tokens * 8) / 1e6, 10);
		expect(row.request_body).toBeNull(); // content is not stored unless the organization turns it on
		const types = (await outboxTypes()).map(e => e.type);
		expect(types).toEqual(expect.arrayContaining(["ai.completion.started", "ai.completion.completed"]));
	});

	test("tokens are counted locally when the provider reports none", async () => {
		up.set("a-smart", { noUsage: true, content: "x".repeat(400) });
		const r = await call("ai.complete", { model: "smart", ...ask("count me") });
		expect(r.usage.completion_tokens).toBe(100);
		expect(r.usage.prompt_tokens).toBeGreaterThan(0);
	});

	test.each([
		["a 5xx", { status: 500 }, "server_error"],
		["a 429", { status: 429 }, "rate_limit"],
		["a timeout", { hang: true }, "timeout"]
	])("on %s the next deployment serves the request", async (_label, behaviour, kind) => {
		up.set("a-smart", behaviour);
		const r = await call("ai.complete", { model: "smart", ...ask("fallback please"), requestId: `dep-${kind}` });
		expect(r.choices[0].message.content).toBe("echo(b-smart): fallback please");
		const [row] = await logs(`dep-${kind}`);
		expect(row.fallback_path).toEqual([`smart@primary:${kind}`, "smart@secondary:ok"]);
	});

	test("a connection error falls back along the chain to another model, with an ai.completion.fallback event", async () => {
		const r = await call("ai.complete", { model: "offline", ...ask("anyone?"), requestId: "chain-1" });
		expect(r.choices[0].message.content).toBe("echo(a-backup): anyone?");
		const [row] = await logs("chain-1");
		expect(row.fallback_path).toEqual(["offline@unreachable:connection", "backup@primary:ok"]);
		const fallback = (await outboxTypes()).find(
			e => e.type === "ai.completion.fallback" && e.payload.requestId === "chain-1"
		);
		expect(fallback.payload).toMatchObject({ fromModel: "offline", toModel: "backup", reason: "connection" });
	});

	test("a deployment that keeps failing is cooled down, announced, and recovers", async () => {
		up.set("a-smart", { status: 503 });
		for (let i = 0; i < 3; i++) await call("ai.complete", { model: "smart", ...ask(`fail ${i}`) });
		expect(up.count("a-smart")).toBe(3);
		// Cooled down: the next requests go straight to the healthy deployment.
		await call("ai.complete", { model: "smart", ...ask("skip the sick one") });
		expect(up.count("a-smart")).toBe(3);
		const health = (await outboxTypes())
			.filter(e => e.type === "ai.provider.health.changed")
			.map(e => e.payload.status);
		expect(health).toContain("unhealthy");

		up.reset();
		await new Promise(r => setTimeout(r, 1100)); // cooldown_seconds = 1
		const r = await call("ai.complete", { model: "smart", ...ask("back?") });
		expect(r.choices[0].message.content).toBe("echo(a-smart): back?");
		expect(
			(await outboxTypes()).filter(e => e.type === "ai.provider.health.changed").map(e => e.payload.status)
		).toContain("healthy");
	});

	test("every deployment and fallback failing is a clear 502, logged and announced, with no key in it", async () => {
		up.set("a-smart", { status: 500 });
		up.set("b-smart", { status: 500 });
		up.set("a-backup", { status: 500 });
		const err: any = await call("ai.complete", { model: "smart", ...ask("doomed"), requestId: "doomed-1" }).catch(
			e => e
		);
		expect(err).toMatchObject({ code: 502, type: "UPSTREAM_FAILED" });
		expect(JSON.stringify(err)).not.toContain(KEY_1);
		const [row] = await logs("doomed-1");
		expect(row.status).toBe("error");
		expect(
			(await outboxTypes()).some(e => e.type === "ai.completion.failed" && e.payload.requestId === "doomed-1")
		).toBe(true);
		await sql.query("UPDATE ai_deployments SET enabled = enabled"); // keep the table warm; no effect
	});

	test("streams: chunks arrive, usage is logged; a missed first-token deadline falls back; a broken stream ends in an error", async () => {
		const lines = await drain(
			await call("ai.stream", { model: "smart", ...ask("stream this please"), requestId: "s-1" })
		);
		expect(lines.at(-1)).toMatchObject({ done: true });
		expect(
			lines
				.slice(0, -1)
				.map(l => l.choices[0]?.delta?.content ?? "")
				.join("")
		).toBe("echo(a-smart): stream this please");
		expect((await logs("s-1"))[0]).toMatchObject({ status: "success", stream: true });
		expect((await logs("s-1"))[0].first_token_ms).not.toBeNull();

		up.set("a-smart", { delayMs: 1000 });
		const slow = await drain(await call("ai.stream", { model: "smart", ...ask("too slow"), requestId: "s-2" }));
		expect(
			slow
				.slice(0, -1)
				.map(l => l.choices[0]?.delta?.content ?? "")
				.join("")
		).toBe("echo(b-smart): too slow");
		expect((await logs("s-2"))[0].fallback_path).toEqual([
			"smart@primary:first_token_timeout",
			"smart@secondary:ok"
		]);

		up.set("a-smart", { cutAfterChunks: 2, chunkDelayMs: 30 });
		const cut = await drain(
			await call("ai.stream", { model: "smart", ...ask("this will break off midway"), requestId: "s-3" })
		);
		expect(cut.at(-1).error).toBeDefined();
		expect(cut.some(l => l.done)).toBe(false);
		expect((await logs("s-3"))[0].status).toBe("error");
	});

	test("closing the stream aborts the upstream request", async () => {
		up.set("a-smart", { chunkDelayMs: 200, content: "one two three four five six seven eight nine ten" });
		const stream: any = await call("ai.stream", { model: "smart", ...ask("long"), requestId: "s-cancel" });
		// A running stream is announced as started before it has any outcome.
		const announced = (await outboxTypes()).filter(e => e.payload.requestId === "s-cancel").map(e => e.type);
		expect(announced).toEqual(["ai.completion.started"]);
		for await (const _ of stream) break; // first chunk, then the consumer goes away
		const deadline = Date.now() + 3000;
		while (!up.requests.find(r => r.model === "a-smart")?.aborted && Date.now() < deadline)
			await new Promise(r => setTimeout(r, 50));
		expect(up.requests.find(r => r.model === "a-smart")?.aborted).toBe(true);
		const deadlineLog = Date.now() + 3000;
		while (!(await logs("s-cancel")).length && Date.now() < deadlineLog) await new Promise(r => setTimeout(r, 50));
		const row = (await logs("s-cancel"))[0];
		expect([row.status, row.error]).toEqual(["cancelled", "client disconnected"]);
	});

	test("cache: a deterministic repeat does not reach the upstream; another organization never gets the answer", async () => {
		const first = await call("ai.complete", { model: "reviewer", ...ask("review this") });
		const second = await call("ai.complete", { model: "reviewer", ...ask("review this") });
		expect(second.choices).toEqual(first.choices);
		expect(up.count()).toBe(1);
		expect(
			(
				await sql.query("SELECT count(*)::int AS n FROM ai_cache WHERE organization_id = $1", [
					owner.organization.id
				])
			).rows[0].n
		).toBe(1);
		// Bypass on request.
		await call("ai.complete", { model: "reviewer", ...ask("review this"), cache: false });
		expect(up.count()).toBe(2);
		// Not deterministic: not cached.
		await call("ai.complete", { model: "smart", ...ask("creative"), temperature: 1 });
		await call("ai.complete", { model: "smart", ...ask("creative"), temperature: 1 });
		expect(up.count()).toBe(4);
		// Organization B, same request, has no such model at all: it can never see A's entry.
		await expect(
			call("ai.complete", { model: "reviewer", ...ask("review this") }, otherAuth)
		).rejects.toMatchObject({ code: 404, type: "MODEL_NOT_FOUND" });
	});

	test("cache: expired answers are pruned from ai_cache, live ones stay", async () => {
		const org = owner.organization.id;
		await sql.query(
			`INSERT INTO ai_cache (organization_id, cache_key, model, response, expires_at) VALUES
			 ($1, 'expired-key', 'reviewer', '{}', now() - interval '1 minute'), ($1, 'live-key', 'reviewer', '{}', now() + interval '1 hour')`,
			[org]
		);
		await (broker.getLocalService("ai") as any).cache.prune(await getDb());
		const keys = (
			await sql.query(
				"SELECT cache_key FROM ai_cache WHERE organization_id = $1 AND cache_key IN ('expired-key', 'live-key')",
				[org]
			)
		).rows.map((r: any) => r.cache_key);
		expect(keys).toEqual(["live-key"]);
	});

	test("logs: rows older than the organization's retention are pruned; newer rows and other organizations' stay", async () => {
		const org = owner.organization.id,
			otherOrg = otherAuth.organizationId;
		await expect(call("ai.configure", { logRetentionDays: 0 })).rejects.toMatchObject({ code: 422 });
		await expect(call("ai.configure", { logRetentionDays: 7 }, otherAuth)).resolves.toMatchObject({
			logRetentionDays: 7
		});
		await call("ai.configure", { logRetentionDays: null }, otherAuth);
		expect(await call("ai.configure", { logRetentionDays: 7 })).toEqual({
			storeContent: false,
			cacheTtlSeconds: 3600,
			cooldownSeconds: 1,
			logRetentionDays: 7
		});
		const insert = (o: string, id: string, daysAgo: number) =>
			sql.query(
				`INSERT INTO ai_completion_logs (request_id, organization_id, requested_model, status, created_at) VALUES ($1, $2, 'smart', 'success', now() - make_interval(days => $3))`,
				[id, o, daysAgo]
			);
		await insert(org, "retention-old", 8);
		await insert(org, "retention-recent", 6);
		await insert(otherOrg, "retention-other-old", 400);
		const prune = () => (broker.getLocalService("ai") as any).prune();
		const kept = async () =>
			(
				await sql.query(
					"SELECT request_id FROM ai_completion_logs WHERE request_id LIKE 'retention-%' ORDER BY request_id"
				)
			).rows.map((r: any) => r.request_id);
		await prune();
		expect(await kept()).toEqual(["retention-other-old", "retention-recent"]);
		// Back to keeping the log for good: nothing more goes.
		expect((await call("ai.configure", { logRetentionDays: null })).logRetentionDays).toBeNull();
		await insert(org, "retention-old-again", 30);
		await prune();
		expect(await kept()).toEqual(["retention-old-again", "retention-other-old", "retention-recent"]);
	});

	test("a rotated provider key takes effect without a restart and never lands in logs or events", async () => {
		await call("secrets.update", { id: keySecret.id, value: KEY_2 });
		const deadline = Date.now() + 3000;
		let seen = "";
		while (seen !== `Bearer ${KEY_2}` && Date.now() < deadline) {
			up.reset();
			await call("ai.complete", { model: "smart", ...ask("rotated?") });
			seen = up.requests[0].authorization ?? "";
		}
		expect(seen).toBe(`Bearer ${KEY_2}`);
		const everything = JSON.stringify([
			(await sql.query("SELECT * FROM ai_completion_logs")).rows,
			(await sql.query("SELECT * FROM outbox")).rows,
			(await sql.query("SELECT * FROM ai_providers")).rows
		]);
		for (const key of [KEY_1, KEY_2]) expect(everything.includes(key)).toBe(false);
	});

	test("rate limits: requests per minute refused with 429, retry-after and an event", async () => {
		const limit = await call("ai-rate-limits.create", { scope: "user", requests_per_minute: 3 });
		try {
			for (let i = 0; i < 3; i++) await call("ai.complete", { model: "smart", ...ask(`n${i}`) });
			const err: any = await call("ai.complete", { model: "smart", ...ask("one too many") }).catch(e => e);
			expect(err).toMatchObject({ code: 429, type: "RATE_LIMITED" });
			expect(err.data.retryAfter).toBeGreaterThan(0);
			expect(
				(await outboxTypes()).some(e => e.type === "ai.ratelimit.exceeded" && e.payload.scope === "user")
			).toBe(true);
			expect((await logs()).at(-1).status).toBe("rate_limited");
		} finally {
			await call("ai-rate-limits.remove", { id: limit.id });
		}
	});

	test("rate limits: tokens per minute stop further requests once used up", async () => {
		const limit = await call("ai-rate-limits.create", { scope: "model", model: "backup", tokens_per_minute: 30 });
		try {
			const first = await call("ai.complete", {
				model: "backup",
				...ask("a question long enough to use up the small token budget of this model")
			});
			expect(first.usage.total_tokens).toBeGreaterThanOrEqual(30);
			await expect(call("ai.complete", { model: "backup", ...ask("again") })).rejects.toMatchObject({
				code: 429,
				data: { scope: "model:backup" }
			});
			// Other models are not affected.
			expect((await call("ai.complete", { model: "smart", ...ask("fine") })).choices).toHaveLength(1);
		} finally {
			await call("ai-rate-limits.remove", { id: limit.id });
		}
	});

	test("rate limits: concurrent calls share one token budget (in-process counters)", async () => {
		// Each call: 10 prompt tokens, max_tokens 10 and an answer of 10; the budget is a clock-aligned minute.
		up.set("a-backup", { content: "x".repeat(40) });
		const limit = await call("ai-rate-limits.create", { scope: "model", model: "backup", tokens_per_minute: 100 });
		try {
			const left = 60_000 - (Date.now() % 60_000);
			if (left < 5000) await new Promise(r => setTimeout(r, left + 50));
			const burst = (i: number) =>
				call("ai.complete", { model: "backup", ...ask(`burst ${String(i).padStart(2, "0")}`), max_tokens: 10 });
			const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => burst(i)));
			const admitted = results
				.filter(r => r.status === "fulfilled")
				.map(r => (r as PromiseFulfilledResult<any>).value);
			expect(admitted.map(r => r.usage.total_tokens)).toEqual([20, 20, 20, 20, 20]);
			expect(
				results.filter(r => r.status === "rejected").map(r => (r as PromiseRejectedResult).reason.code)
			).toEqual(Array(15).fill(429));
		} finally {
			await call("ai-rate-limits.remove", { id: limit.id });
		}
	});

	test("bad requests: unknown model 404, malformed messages 422 naming the field, viewers may not spend", async () => {
		await expect(call("ai.complete", { model: "nope", ...ask("x") })).rejects.toMatchObject({
			code: 404,
			type: "MODEL_NOT_FOUND"
		});
		await expect(
			call("ai.complete", { model: "smart", messages: [{ role: "wizard", content: "x" }] })
		).rejects.toMatchObject({ code: 422 });
		await expect(call("ai.complete", { model: "smart", messages: "hello" })).rejects.toMatchObject({
			code: 422,
			data: [expect.objectContaining({ field: "messages" })]
		});
		await expect(
			call("ai.complete", { model: "smart", ...ask("x") }, { ...auth, role: "viewer" })
		).rejects.toMatchObject({ code: 403 });
		await expect(
			call("ai-providers.create", {
				name: "bad",
				base_url: "http://127.0.0.1:1/v1",
				headers: { Authorization: "Bearer x" }
			})
		).rejects.toMatchObject({
			code: 422,
			data: [expect.objectContaining({ field: "headers" })]
		});
		await expect(
			call("ai-providers.create", {
				name: "bad2",
				base_url: "http://127.0.0.1:1/v1",
				api_key_secret: "NO_SUCH_SECRET"
			})
		).rejects.toMatchObject({
			code: 422,
			data: [expect.objectContaining({ field: "api_key_secret" })]
		});
	});

	test("embeddings go through the same routing and logging", async () => {
		const r = await call("ai.embed", { model: "embedder", input: ["a", "b"], requestId: "emb-1" });
		expect(r.data).toHaveLength(2);
		expect(r.model).toBe("embedder");
		expect((await logs("emb-1"))[0]).toMatchObject({ kind: "embedding", status: "success" });
	});

	test("the completion log lists with filters and cost totals", async () => {
		const r = await call("ai.logs", { model: "smart", status: "success" });
		expect(r.rows.length).toBeGreaterThan(3);
		expect(r.rows.every((x: any) => x.status === "success")).toBe(true);
		expect(r.totals.requests).toBe(r.rows.length);
		expect(r.totals.cost).toBeGreaterThan(0);
		const models = await call("ai.models", {});
		expect(models.map((m: any) => m.id).sort()).toEqual(["backup", "embedder", "offline", "reviewer", "smart"]);
	});

	test("a completion log row PostgreSQL refuses is written, with its events, once it accepts again; the request itself succeeds", async () => {
		await sql.query("ALTER TABLE ai_completion_logs RENAME TO ai_completion_logs_away");
		try {
			const r = await call("ai.complete", {
				model: "smart",
				...ask("logged later"),
				temperature: 0.7,
				requestId: "log-retry-1"
			});
			expect(r.choices[0].message.content).toBe("echo(a-smart): logged later");
		} finally {
			await sql.query("ALTER TABLE ai_completion_logs_away RENAME TO ai_completion_logs");
		}
		const completed = async () =>
			(await outboxTypes()).filter(
				e => e.type === "ai.completion.completed" && e.payload.requestId === "log-retry-1"
			);
		expect(await completed()).toEqual([]); // the events wait with their row
		const deadline = Date.now() + 10_000;
		while (!(await logs("log-retry-1")).length && Date.now() < deadline) await new Promise(r => setTimeout(r, 50));
		expect(await logs("log-retry-1")).toEqual([
			expect.objectContaining({ status: "success", requested_model: "smart" })
		]);
		expect(await completed()).toHaveLength(1);
	});

	describe("what the upstream answers", () => {
		// A deployment of its own (no fallbacks), created for the test and removed after it.
		async function withModel<T>(
			name: string,
			providerModel: string,
			kind: string,
			fn: () => Promise<T>,
			providerName = "primary"
		): Promise<T> {
			const provider = (await call("ai-providers.list", {})).rows.find((p: any) => p.name === providerName);
			const model = await call("ai-deployments.create", {
				provider_id: provider.id,
				name,
				provider_model: providerModel,
				kind
			});
			try {
				return await fn();
			} finally {
				await call("ai-deployments.remove", { id: model.id });
			}
		}
		const everythingStored = async () =>
			JSON.stringify([
				(await sql.query("SELECT * FROM ai_completion_logs")).rows,
				(await sql.query("SELECT * FROM outbox")).rows,
				await call("ai.logs", { limit: 500 })
			]);

		test("an HTML page, plain text or another API's JSON is a 502 upstream error that relays none of it", async () => {
			const secret = "INTERNAL-ADMIN-PAGE-7731";
			await withModel("odd", "a-odd", "chat", async () => {
				const cases = [
					[
						{ status: 200, contentType: "text/html", body: `<html><body>${secret}</body></html>` },
						/chat completion \(content type text\/html\)/
					],
					[
						{ status: 200, contentType: "application/json", body: JSON.stringify({ internal: secret }) },
						/chat completion \(no choices with a message\)/
					],
					[{ status: 200, body: secret }, /content type none/],
					[
						{ status: 404, contentType: "text/plain", body: secret },
						/answered 404 with a non-OpenAI body \(content type text\/plain\)/
					],
					[
						{ status: 401, contentType: "text/html; charset=utf-8", body: `<h1>${secret}</h1>` },
						/answered 401 with a non-OpenAI body \(content type text\/html\)/
					]
				] as const;
				for (const [i, [raw, message]] of cases.entries()) {
					up.set("a-odd", { raw });
					const err: any = await call("ai.complete", {
						model: "odd",
						...ask("hi"),
						requestId: `odd-${i}`
					}).catch(e => e);
					expect(err).toMatchObject({ code: 502, type: "UPSTREAM_FAILED" });
					expect(err.message).toMatch(message);
					expect(JSON.stringify(err)).not.toContain(secret);
					expect((await logs(`odd-${i}`))[0].fallback_path).toEqual(["odd@primary:bad_response"]);
				}
				// A stream that is not an event stream, and an event stream of something else.
				up.set("a-odd", { raw: { status: 200, contentType: "text/html", body: secret } });
				const html: any = await call("ai.stream", { model: "odd", ...ask("hi") }).catch(e => e);
				expect(html).toMatchObject({
					code: 502,
					message: expect.stringMatching(/not an OpenAI-compatible stream \(content type text\/html\)/)
				});
				up.set("a-odd", {
					raw: {
						status: 200,
						contentType: "text/event-stream",
						body: `data: ${JSON.stringify({ secret })}\n\ndata: [DONE]\n\n`
					}
				});
				const other: any = await call("ai.stream", { model: "odd", ...ask("hi") }).catch(e => e);
				expect(other).toMatchObject({
					code: 502,
					message: expect.stringMatching(/stream \(a chunk has no choices\)/)
				});
				up.set("a-odd", {
					raw: { status: 200, contentType: "text/event-stream", body: `data: <b>${secret}</b>\n\n` }
				});
				const notJson: any = await call("ai.stream", { model: "odd", ...ask("hi") }).catch(e => e);
				expect(notJson).toMatchObject({
					code: 502,
					message: expect.stringMatching(/stream \(a line is not JSON\)/)
				});
				expect(JSON.stringify([html, other, notJson])).not.toContain(secret);
			});
			await withModel("odd-embed", "a-odd-embed", "embedding", async () => {
				up.set("a-odd-embed", {
					raw: { status: 200, contentType: "application/json", body: JSON.stringify({ data: secret }) }
				});
				const err: any = await call("ai.embed", { model: "odd-embed", input: "x" }).catch(e => e);
				expect(err).toMatchObject({
					code: 502,
					message: expect.stringMatching(/not an OpenAI-compatible embedding list/)
				});
				expect(JSON.stringify(err)).not.toContain(secret);
			});
			expect(await everythingStored()).not.toContain(secret);
		});

		test("a redirect is not followed: 502, and its target is never contacted", async () => {
			let contacted = 0;
			const target = http.createServer((_req, res) => res.end("{}"));
			target.on("connection", () => contacted++);
			await new Promise<void>(r => target.listen(0, "127.0.0.1", r));
			try {
				await withModel("moved", "a-moved", "chat", async () => {
					for (const location of [
						`http://127.0.0.1:${(target.address() as AddressInfo).port}/v1/chat/completions`,
						"http://169.254.169.254/latest/meta-data/"
					]) {
						up.set("a-moved", { raw: { status: 302, headers: { location } } });
						const err: any = await call("ai.complete", { model: "moved", ...ask("hi") }).catch(e => e);
						expect(err).toMatchObject({
							code: 502,
							type: "UPSTREAM_FAILED",
							message: expect.stringContaining("redirect (302), which is not followed")
						});
						expect(err.message).not.toContain(location);
					}
				});
				expect(contacted).toBe(0);
			} finally {
				target.close();
			}
		});

		test("an upstream echoing the key it received: the key reaches no error, log row, logs API or event", async () => {
			// Not shaped like an sk-… key: only knowing the value can redact it.
			const key = "AIzaFakeUpstreamKey0e7d41c9";
			await call("secrets.create", { environment: "production", name: "ECHO_KEY", value: key });
			await call("ai-providers.create", {
				name: "echoing",
				base_url: up.baseUrl,
				api_key_secret: "ECHO_KEY",
				timeout_ms: 400
			});
			await withModel(
				"echoed",
				"a-echo",
				"chat",
				async () => {
					up.set("a-echo", { echoCredentials: true });
					const err: any = await call("ai.complete", {
						model: "echoed",
						...ask("hi"),
						requestId: "echo-1"
					}).catch(e => e);
					expect(up.requests.at(-1)!.authorization).toBe(`Bearer ${key}`);
					expect(err).toMatchObject({ code: 400, type: "UPSTREAM_REFUSED" });
					// The upstream's words stay, the key does not.
					expect(err.message).toContain(
						"upstream refused the request (401): Incorrect API key provided: authorization=Bearer [redacted]"
					);
					const streamed: any = await call("ai.stream", {
						model: "echoed",
						...ask("hi"),
						requestId: "echo-2"
					}).catch(e => e);
					expect(streamed).toMatchObject({ code: 400 });
					expect(JSON.stringify([err, streamed, err.message, streamed.message])).not.toContain(key);
					expect((await logs("echo-1"))[0].error).toContain("[redacted]");
					const failed = (await outboxTypes()).filter(
						e => e.type === "ai.completion.failed" && ["echo-1", "echo-2"].includes(e.payload.requestId)
					);
					expect(failed).toHaveLength(2);
					expect(await everythingStored()).not.toContain(key);
				},
				"echoing"
			);
		});

		test("headers that carry credentials come from secrets: sent upstream, never stored, shown or echoed back", async () => {
			const headerKey = "goog-Header-Value-83bd1f0a";
			await call("secrets.create", { environment: "production", name: "GOOGLE_KEY", value: headerKey });
			// Typed in, a credential header is refused, naming the header.
			for (const name of ["X-Goog-Api-Key", "Proxy-Authorization", "api-key", "X-Auth-Token"]) {
				const err: any = await call("ai-providers.create", {
					name: "typed",
					base_url: up.baseUrl,
					headers: { [name]: "typed-in-value" }
				}).catch(e => e);
				expect(err).toMatchObject({
					code: 422,
					data: [
						expect.objectContaining({
							field: "headers",
							message: expect.stringContaining(`"${name}" carries a credential`)
						})
					]
				});
			}
			const missing: any = await call("ai-providers.create", {
				name: "typed",
				base_url: up.baseUrl,
				headers: { "X-Goog-Api-Key": { secret: "NO_SUCH_SECRET" } }
			}).catch(e => e);
			expect(missing).toMatchObject({
				code: 422,
				data: [
					expect.objectContaining({
						field: "headers",
						message: "no secret named NO_SUCH_SECRET in production"
					})
				]
			});
			const provider = await call("ai-providers.create", {
				name: "google-like",
				base_url: up.baseUrl,
				headers: { "X-Goog-Api-Key": { secret: "GOOGLE_KEY" }, "OpenAI-Organization": "org-visible" },
				timeout_ms: 400
			});
			expect(provider.headers).toEqual({
				"X-Goog-Api-Key": { secret: "GOOGLE_KEY" },
				"OpenAI-Organization": "org-visible"
			});
			await withModel(
				"googled",
				"a-google",
				"chat",
				async () => {
					const ok = await call("ai.complete", { model: "googled", ...ask("hi") });
					expect(ok.choices[0].message.content).toBe("echo(a-google): hi");
					expect(up.requests.at(-1)!.headers["x-goog-api-key"]).toBe(headerKey);
					expect(up.requests.at(-1)!.headers["openai-organization"]).toBe("org-visible");
					up.set("a-google", { echoCredentials: true, status: 403 });
					const err: any = await call("ai.complete", {
						model: "googled",
						...ask("hi"),
						requestId: "echo-header"
					}).catch(e => e);
					expect(err.message).toContain("x-goog-api-key=[redacted]");
					expect(JSON.stringify(err)).not.toContain(headerKey);
				},
				"google-like"
			);
			const stored = JSON.stringify([
				(await sql.query("SELECT * FROM ai_providers")).rows,
				await call("ai-providers.list", {}),
				await everythingStored()
			]);
			expect(stored).not.toContain(headerKey);
		});

		test("a credential header typed in before the upgrade is removed by the migration; the provider then says which secret to choose", async () => {
			const provider = await call("ai-providers.create", {
				name: "legacy",
				base_url: up.baseUrl,
				timeout_ms: 400
			});
			await sql.query(
				`UPDATE ai_providers SET headers = '{"X-Goog-Api-Key": "legacy-typed-key-4410", "OpenAI-Organization": "org-1"}' WHERE id = $1`,
				[provider.id]
			);
			await sql.query(
				fs.readFileSync(path.resolve(__dirname, "../../migrations/ai/0004_provider_secret_headers.sql"), "utf8")
			);
			const row = (await sql.query("SELECT headers FROM ai_providers WHERE id = $1", [provider.id])).rows[0];
			expect(row.headers).toEqual({ "X-Goog-Api-Key": { secret: null }, "OpenAI-Organization": "org-1" });
			broker.broadcast("ai.config.changed", { organizationId: owner.organization.id });
			await withModel(
				"legacy-model",
				"a-legacy",
				"chat",
				async () => {
					const err: any = await call("ai.complete", { model: "legacy-model", ...ask("hi") }).catch(e => e);
					expect(err).toMatchObject({
						code: 400,
						message: expect.stringContaining("header X-Goog-Api-Key needs a secret")
					});
					expect(up.count("a-legacy")).toBe(0);
				},
				"legacy"
			);
			// Moving the provider to another environment must settle the header too.
			await expect(
				call("ai-providers.update", { id: provider.id, api_key_environment: "staging" })
			).rejects.toMatchObject({
				code: 422,
				data: [
					expect.objectContaining({ field: "headers", message: expect.stringContaining("X-Goog-Api-Key") })
				]
			});
		});
	});
});
