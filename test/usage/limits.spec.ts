// Quotas and budgets in one process against real PostgreSQL and Redis, the ai calling a fake upstream: CRUD and its
// validation and tenancy, enforcement (requests, tokens, team, money), settlement of a cancelled stream, one alert
// per crossing whatever the replays, reservations that expire, and counters rebuilt after Redis lost them.
import pg from "pg";
import Redis from "ioredis";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, cleanRedis, uniqueNamespace, REDIS_URL } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { FakeOpenAI } from "../helpers/fake-openai";
import { AI_STACK, ask } from "../helpers/ai";
import { waitUntil } from "../helpers/wait";
import { periodStart, usageLimitPrefix } from "../../lib/usage-limits";
import { MCP_STACK, TINY } from "../mcp/stack";

const USAGE = [
	// The mcp module's tool executions count as tool calls (its mcp.events).
	...MCP_STACK.filter(f => f.startsWith("services/mcp/")),
	"services/ai/agent-runs.service.ts",
	"services/auth/api-keys.service.ts",
	"services/usage/quotas.service.ts",
	"services/usage/budgets.service.ts",
	"services/usage/alerts.service.ts",
	"services/usage/limits.service.ts"
];
// The channels middleware's publish (@moleculer/channels adds it to the broker).
type ChannelBroker = { sendToChannel(channel: string, payload: object): Promise<void> };
// "hello there" as the fake upstream answers it: 3 tokens, and a prompt of ask(x) is ceil(JSON length / 4) tokens.
const CONTENT = "hello there!";

describeWith(["postgres", "redis"])("usage quotas and budgets (in-process broker, real PostgreSQL and Redis)", () => {
	const namespace = uniqueNamespace("ulim");
	const up = new FakeOpenAI();
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	let sql: pg.Client;
	let auth: any, otherAuth: any;

	const call = (action: string, params: any, who = auth) => broker.call<any, any>(action, params, as(who));
	const complete = (extra: Record<string, unknown> = {}) =>
		call("ai.complete", { model: "gpt", ...ask("count me"), max_tokens: 3, ...extra });
	const status = async (id: string) => (await call("usage-limits.list", {})).find((l: any) => l.id === id);
	const consumed = async (id: string) =>
		Number(
			(
				await sql.query(
					"SELECT coalesce(sum(used), 0) AS used FROM usage_limit_consumption WHERE limit_id = $1",
					[id]
				)
			).rows[0].used
		);
	const outbox = async (type: string) =>
		(await sql.query("SELECT payload FROM outbox WHERE payload->>'type' = $1", [type])).rows.map(r => r.payload);
	// Each test gets limits of its own: the previous test's are disabled so they stop counting.
	const disableAll = async () => {
		for (const svc of ["usage-quotas", "usage-budgets"])
			for (const l of await call(`${svc}.find`, {})) await call(`${svc}.update`, { id: l.id, enabled: false });
	};

	beforeAll(async () => {
		const base = await up.start();
		up.set("up-gpt", { content: CONTENT });
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		const t = await createTestBroker(
			{
				DATABASE_URL: db.url,
				REDIS_URL,
				NAMESPACE: namespace,
				CHANNELS_RETRY_BASE_MS: "10",
				AI_LOG_BATCH_MS: "0",
				AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
				USAGE_RESERVATION_TTL_MS: "1000"
			},
			[...AI_STACK, ...USAGE]
		);
		broker = t.broker;
		stop = t.stop;
		const owner: any = await broker.call("auth.register", {
			email: "limits@example.com",
			password: "correct horse battery",
			name: "Owner"
		});
		auth = await broker.call("auth.resolve", { token: owner.accessToken, organizationId: owner.organization.id });
		const other: any = await broker.call("auth.register", {
			email: "limits-other@example.com",
			password: "correct horse battery",
			name: "Other"
		});
		otherAuth = await broker.call("auth.resolve", {
			token: other.accessToken,
			organizationId: other.organization.id
		});
		await call("secrets.create", { environment: "production", name: "UP_KEY", value: "sk-up-limits-1" });
		const p = await call("ai-providers.create", { name: "fake", base_url: base, api_key_secret: "UP_KEY" });
		await call("ai-deployments.create", {
			provider_id: p.id,
			name: "gpt",
			provider_model: "up-gpt",
			input_price: 1000,
			output_price: 2000
		});
	}, 60_000);

	afterAll(async () => {
		await stop?.();
		await sql?.end();
		await db?.drop();
		await up.stop();
		await cleanRedis(namespace);
	});

	test("CRUD: fields are validated by name, the subject must be the organization's own, other organizations see nothing", async () => {
		await expect(
			call("usage-quotas.create", { name: "q", metric: "bytes", scope: "organization", period: "day", amount: 5 })
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "metric" })] });
		await expect(
			call("usage-quotas.create", { name: "q", metric: "tokens", scope: "user", period: "day", amount: 5 })
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "subject_id" })] });
		await expect(
			call("usage-budgets.create", {
				name: "b",
				scope: "user",
				subject_id: otherAuth.userId,
				period: "month",
				amount: 5
			})
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "subject_id" })] });
		await expect(
			call("usage-budgets.create", { name: "b", scope: "organization", period: "week", amount: 5 })
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "period" })] });
		await expect(
			call("usage-budgets.create", {
				name: "b",
				scope: "organization",
				period: "day",
				amount: 5,
				thresholds: [0.5, 1.5]
			})
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "thresholds[1]" })] });

		const budget = await call("usage-budgets.create", {
			name: "Monthly",
			scope: "user",
			subject_id: auth.userId,
			period: "month",
			amount: 12.5,
			enabled: false
		});
		expect(budget).toMatchObject({ amount: 12.5, thresholds: [0.8], scope: "user", subject_id: auth.userId });
		await expect(call("usage-budgets.update", { id: budget.id, scope: "team" })).rejects.toMatchObject({
			code: 422,
			data: [expect.objectContaining({ field: "subject_id" })]
		});
		await expect(call("usage-budgets.get", { id: budget.id }, otherAuth)).rejects.toMatchObject({ code: 404 });
		await expect(call("usage-budgets.update", { id: budget.id, amount: 1 }, otherAuth)).rejects.toMatchObject({
			code: 404
		});
		expect((await call("usage-budgets.find", {}, otherAuth)).length).toBe(0);
		expect(await call("usage-limits.list", {}, otherAuth)).toEqual([]);
		const listed = await status(budget.id);
		expect(listed).toMatchObject({ kind: "budget", subject_name: "Owner", used: 0, reserved: 0, enabled: false });
		await call("usage-budgets.remove", { id: budget.id });
	});

	test("a requests quota lets exactly its limit through, then refuses with a 429 naming it, logged as rate limited", async () => {
		await disableAll();
		const quota = await call("usage-quotas.create", {
			name: "Three a day",
			metric: "requests",
			scope: "organization",
			period: "day",
			amount: 3
		});
		for (let i = 0; i < 3; i++) await complete();
		const refused = await complete({ requestId: "refused-by-quota" }).catch(e => e);
		expect(refused).toMatchObject({
			code: 429,
			type: "QUOTA_EXCEEDED",
			data: {
				details: {
					quota: {
						id: quota.id,
						name: "Three a day",
						metric: "requests",
						scope: "organization",
						period: "day",
						periodStart: periodStart("day").toISOString(),
						limit: 3,
						used: 3
					}
				}
			}
		});
		expect(refused.message).toContain('quota "Three a day"');
		const log = await sql.query("SELECT status, error FROM ai_completion_logs WHERE request_id = $1", [
			"refused-by-quota"
		]);
		expect(log.rows[0]).toMatchObject({ status: "rate_limited" });
		expect(await status(quota.id)).toMatchObject({ used: 3, reserved: 0 });
		await waitUntil(
			"the durable count",
			() => consumed(quota.id),
			n => n === 3
		);
	});

	test("a team's tokens quota counts its members' tokens; a budget refuses with a 402 naming it", async () => {
		await disableAll();
		const team = await call("auth-teams.create", { name: "Platform" });
		await call("auth-teams.addMember", { id: team.id, userId: auth.userId });
		const first = await complete();
		const tokens = first.usage.total_tokens;
		const quota = await call("usage-quotas.create", {
			name: "Team tokens",
			metric: "tokens",
			scope: "team",
			subject_id: team.id,
			period: "month",
			amount: tokens * 2
		});
		await complete();
		await complete();
		const refused = await complete().catch(e => e);
		expect(refused).toMatchObject({
			code: 429,
			type: "QUOTA_EXCEEDED",
			data: { details: { quota: { id: quota.id } } }
		});
		expect(await status(quota.id)).toMatchObject({ used: tokens * 2, subject_name: "Platform" });
		await disableAll();

		const one = await complete();
		const price = (one.usage.prompt_tokens * 1000 + one.usage.completion_tokens * 2000) / 1e6;
		const budget = await call("usage-budgets.create", {
			name: "Pocket money",
			scope: "organization",
			period: "day",
			amount: price * 2
		});
		await complete();
		await complete();
		const broke = await complete().catch(e => e);
		expect(broke).toMatchObject({
			code: 402,
			type: "BUDGET_EXCEEDED",
			data: { details: { budget: { id: budget.id, name: "Pocket money", scope: "organization", period: "day" } } }
		});
		expect(broke.data.details.budget.used).toBeCloseTo(price * 2, 9);
	});

	test("an API key's quota counts only that key's requests; a tool-call quota counts the calls answered", async () => {
		await disableAll();
		const key = await call("auth-api-keys.create", { name: "ci" });
		const keyAuth = await broker.call("auth.resolve", { apiKey: key.key, organizationId: auth.organizationId });
		const quota = await call("usage-quotas.create", {
			name: "CI key",
			metric: "requests",
			scope: "api_key",
			subject_id: key.id,
			period: "day",
			amount: 1
		});
		const viaKey = () => call("ai.complete", { model: "gpt", ...ask("from ci"), max_tokens: 3 }, keyAuth);
		await viaKey();
		await expect(viaKey()).rejects.toMatchObject({
			type: "QUOTA_EXCEEDED",
			data: { details: { quota: { id: quota.id } } }
		});
		// The same user without the key is not counted on it.
		await complete();
		expect(await status(quota.id)).toMatchObject({ used: 1, subject_name: "ci" });

		await disableAll();
		const tools = await call("usage-quotas.create", {
			name: "One tool call",
			metric: "tool_calls",
			scope: "organization",
			period: "day",
			amount: 1
		});
		up.set("up-gpt", { toolCall: { name: "search", arguments: '{"q":"x"}' } });
		try {
			// Nothing is reserved for tool calls: the first request runs and its call is counted when it settles.
			const answer = await complete();
			expect(answer.choices[0].message.tool_calls).toHaveLength(1);
			await waitUntil(
				"the tool call settled",
				() => status(tools.id),
				q => q.used === 1
			);
			await expect(complete()).rejects.toMatchObject({
				type: "QUOTA_EXCEEDED",
				data: { details: { quota: { id: tools.id } } }
			});
			await waitUntil(
				"the durable count",
				() => consumed(tools.id),
				n => n === 1
			);
		} finally {
			up.set("up-gpt", { content: CONTENT });
		}
	});

	test("MCP tool executions count against a tool-call quota: N go through, the next call is refused naming it", async () => {
		await disableAll();
		const quota = await call("usage-quotas.create", {
			name: "Two tool calls",
			metric: "tool_calls",
			scope: "organization",
			period: "day",
			amount: 2
		});
		await call("mcp-servers.create", { name: "tiny", transport: "stdio", command: process.execPath, args: [TINY] });
		const echo = (message: string) => call("mcp.call", { server: "tiny", tool: "echo", arguments: { message } });
		for (const m of ["one", "two"]) expect((await echo(m)).is_error).toBe(false);
		// Counted durably (each execution once) and in the live counters the AI replicas check.
		await waitUntil(
			"both executions consumed",
			() => consumed(quota.id),
			n => n === 2
		);
		await waitUntil(
			"the live counter",
			() => status(quota.id),
			q => q.used === 2
		);
		const refused = complete();
		await expect(refused).rejects.toMatchObject({
			type: "QUOTA_EXCEEDED",
			data: { details: { quota: { id: quota.id, name: "Two tool calls" } } }
		});
		await expect(refused).rejects.toThrow(
			/quota "Two tool calls" \(organization, per day\) exceeded: 2 of 2 tool calls/
		);
		const [alert] = await outbox("usage.quota.exceeded").then(a => a.filter(e => e.quotaId === quota.id));
		expect(alert).toMatchObject({ quotaId: quota.id, metric: "tool_calls", used: 2, limit: 2 });
		// A third direct call is refused the same way, before it reaches the server.
		const third = echo("three");
		await expect(third).rejects.toMatchObject({ type: "QUOTA_EXCEEDED" });
		await expect(third).rejects.toThrow(/quota "Two tool calls" \(organization, per day\) exceeded: 2 of 2/);
		expect(await consumed(quota.id)).toBe(2);
	});

	test("a tool-call quota of N lets exactly N of an agent run's MCP tool calls through, each counted once", async () => {
		await disableAll();
		const quota = await call("usage-quotas.create", {
			name: "Agent tools",
			metric: "tool_calls",
			scope: "organization",
			period: "day",
			amount: 3
		});
		const executions = async () =>
			Number(
				(
					await sql.query("SELECT count(*)::int AS n FROM mcp_executions WHERE organization_id = $1", [
						auth.organizationId
					])
				).rows[0].n
			);
		const before = await executions();
		// The model asks for one call every turn. Each answer waits until every call made so far is counted (the
		// usage module counts an execution from its event), so no call is let through only because its predecessor
		// was not counted yet.
		up.set("up-gpt", {
			toolCall: { name: "tiny__echo", arguments: '{"message":"from the agent"}' },
			before: async () => {
				const made = (await executions()) - before;
				await waitUntil(
					"the calls made so far counted",
					() => status(quota.id),
					q => q.used >= made
				);
			}
		});
		try {
			const run = await call("ai-agent-runs.start", {
				model: "gpt",
				prompt: "echo",
				tool_sets: ["tiny"],
				max_steps: 10
			});
			expect(run.status).toBe("budget_exceeded");
			expect(run.error).toMatch(/quota "Agent tools" \(organization, per day\) exceeded: 3 of 3 tool calls/);
			const tools = run.steps.filter((s: any) => s.kind === "tool");
			expect(tools.filter((s: any) => s.status === "completed")).toHaveLength(3);
			expect(await executions()).toBe(before + 3);
			// Counted once each: the model turns that asked for them do not count them again.
			await waitUntil(
				"the executions counted",
				() => status(quota.id),
				q => q.used === 3
			);
			expect(await consumed(quota.id)).toBe(3);
		} finally {
			up.set("up-gpt", { content: CONTENT });
		}
	});

	test("a cancelled stream is billed for what it produced, and its reservation is gone", async () => {
		await disableAll();
		const quota = await call("usage-quotas.create", {
			name: "Stream tokens",
			metric: "tokens",
			scope: "user",
			subject_id: auth.userId,
			period: "day",
			amount: 1_000_000
		});
		up.set("up-gpt", { chunkDelayMs: 100, content: "one two three four five six seven eight nine ten eleven" });
		try {
			const stream: any = await call("ai.stream", {
				model: "gpt",
				...ask("long"),
				max_tokens: 500,
				requestId: "cancelled-stream"
			});
			for await (const _ of stream) break;
			const row = await waitUntil(
				"the cancelled stream's log row",
				async () =>
					(
						await sql.query(
							"SELECT status, prompt_tokens, completion_tokens FROM ai_completion_logs WHERE request_id = $1",
							["cancelled-stream"]
						)
					).rows[0],
				r => !!r
			);
			expect(row.status).toBe("cancelled");
			const produced = row.prompt_tokens + row.completion_tokens;
			expect(produced).toBeGreaterThan(0);
			expect(produced).toBeLessThan(500);
			// Settled off the answer's path: soon after, not necessarily before the log row.
			await waitUntil(
				"the stream settled",
				() => status(quota.id),
				q => q.used === produced && q.reserved === 0
			);
			await waitUntil(
				"the durable count",
				() => consumed(quota.id),
				n => n === produced
			);
		} finally {
			up.set("up-gpt", { content: CONTENT });
		}
	});

	test("each threshold crossing is announced once per period, however often the events are replayed", async () => {
		await disableAll();
		const quota = await call("usage-quotas.create", {
			name: "Five requests",
			metric: "requests",
			scope: "organization",
			period: "month",
			amount: 5,
			thresholds: [0.4, 0.8]
		});
		for (let i = 0; i < 5; i++) await complete({ requestId: `crossing-${i}` });
		await waitUntil(
			"five requests counted",
			() => consumed(quota.id),
			n => n === 5
		);
		const crossings = async () => [
			...(await outbox("usage.quota.warning")).filter(e => e.quotaId === quota.id),
			...(await outbox("usage.quota.exceeded")).filter(e => e.quotaId === quota.id)
		];
		const first = await crossings();
		expect(first.map(e => [e.type, e.threshold, e.used]).sort()).toEqual([
			["usage.quota.exceeded", 1, 5],
			["usage.quota.warning", 0.4, 2],
			["usage.quota.warning", 0.8, 4]
		]);
		expect(first.find(e => e.threshold === 0.8)).toMatchObject({
			name: "Five requests",
			percentage: 80,
			metric: "requests",
			scope: "organization",
			period: "month",
			limit: 5
		});
		// Every recorded event again, up to three times: nothing more is counted or announced.
		const recorded = (await outbox("ai.usage.recorded")).filter(e => e.requestId.startsWith("crossing-"));
		expect(recorded.length).toBe(5);
		const send = (e: object) => (broker as unknown as ChannelBroker).sendToChannel("ai.events", e);
		for (let n = 0; n < 3; n++) for (const e of recorded) await send(e);
		const probe = { id: "00000000-0000-4000-8000-000000000000" };
		await send({ ...recorded[0], ...probe, organizationId: otherAuth.organizationId });
		await waitUntil(
			"the replays handled",
			async () =>
				(await sql.query("SELECT 1 FROM processed_events WHERE event_id = $1", [probe.id])).rowCount ?? 0,
			n => n === 1
		);
		expect(await consumed(quota.id)).toBe(5);
		expect((await crossings()).length).toBe(3);
		const alerts = await call("usage-alerts.list", {});
		expect(
			alerts.rows
				.filter((a: any) => a.quota_id === quota.id)
				.map((a: any) => a.threshold)
				.sort()
		).toEqual([0.4, 0.8, 1]);
		expect((await call("usage-alerts.list", {}, otherAuth)).rows).toEqual([]);
	});

	test("a reservation a replica never settled expires and frees its share", async () => {
		await disableAll();
		const quota = await call("usage-quotas.create", {
			name: "One at a time",
			metric: "requests",
			scope: "organization",
			period: "day",
			amount: 1
		});
		const ai: any = broker.getLocalService("ai");
		// As a replica that crashed mid-request leaves it: reserved, never settled.
		const held = await ai.reserveUsage({
			organizationId: auth.organizationId,
			userId: auth.userId,
			estimate: { tokens: 10, requests: 1, tool_calls: 0, cost: 0 }
		});
		expect(held).toBeDefined();
		expect(await status(quota.id)).toMatchObject({ used: 0, reserved: 1 });
		await expect(complete()).rejects.toMatchObject({ type: "QUOTA_EXCEEDED" });
		await waitUntil(
			"the reservation to expire",
			async () => (await status(quota.id)).reserved,
			r => r === 0
		);
		await complete();
		await waitUntil(
			"the request settled",
			() => status(quota.id),
			q => q.used === 1 && q.reserved === 0
		);
	});

	test("counters Redis lost are rebuilt from PostgreSQL before anything more is admitted", async () => {
		await disableAll();
		const quota = await call("usage-quotas.create", {
			name: "Rebuilt",
			metric: "requests",
			scope: "organization",
			period: "day",
			amount: 3
		});
		await complete();
		await complete();
		await waitUntil(
			"two requests counted durably",
			() => consumed(quota.id),
			n => n === 2
		);
		const prefix = usageLimitPrefix(namespace);
		const redis = new Redis(REDIS_URL);
		try {
			expect((await redis.keys(`${prefix}:${quota.id}:*`)).length).toBeGreaterThan(0);
			await cleanRedis(prefix);
			expect(await redis.keys(`${prefix}:${quota.id}:*`)).toEqual([]);
			await complete();
			await expect(complete()).rejects.toMatchObject({
				type: "QUOTA_EXCEEDED",
				data: { details: { quota: { used: 3 } } }
			});
			const key = `${prefix}:${quota.id}:${periodStart("day").getTime()}`;
			expect(await redis.hget(key, "used")).toBe("3");
		} finally {
			redis.disconnect();
		}
	});

	test("a request that ends after midnight is settled in the new day, where the usage module counts it", async () => {
		await disableAll();
		const quota = await call("usage-quotas.create", {
			name: "Per day",
			metric: "requests",
			scope: "organization",
			period: "day",
			amount: 5
		});
		const ai: any = broker.getLocalService("ai");
		const store = ai.usageLimitStore;
		const today = periodStart("day").getTime();
		const tomorrow = today + 86_400_000;
		const counter = (start: number) => ({ limitId: quota.id, periodStart: start });
		// Reserved today; tomorrow's counter already there (another request opened it).
		const held = await ai.reserveUsage({
			organizationId: auth.organizationId,
			userId: auth.userId,
			estimate: { tokens: 10, requests: 1, tool_calls: 0, cost: 0 }
		});
		await store.init([{ ...counter(tomorrow), expiresAt: tomorrow + 2 * 86_400_000, used: 0 }]);
		expect(await store.peek([counter(today)])).toEqual([{ used: 0, reserved: 1 }]);
		// It ended one second into tomorrow (its metering event's occurredAt).
		await ai.settleUsage(held, { tokens: 10, requests: 1, tool_calls: 0, cost: 0 }, new Date(tomorrow + 1000));
		expect(await store.peek([counter(today), counter(tomorrow)])).toEqual([
			{ used: 0, reserved: 0 },
			{ used: 1, reserved: 0 }
		]);
	});
});
