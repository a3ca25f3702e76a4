// Budgets cannot be overshot by replicas racing: two ai replicas in separate processes over RabbitMQ, Redis shared,
// the usage module in a third consuming ai.events; 50 concurrent completions, half on each replica, against a budget
// with room for 10.
import crypto from "crypto";
import pg from "pg";
import Redis from "ioredis";
import { ServiceBroker } from "moleculer";
import { describeWith, REDIS_URL } from "../helpers/infra";
import { startTestCluster, type ClusterNode, type TestCluster } from "../helpers/cluster";
import { as } from "../helpers/broker";
import { ask } from "../helpers/ai";
import { FakeOpenAI } from "../helpers/fake-openai";
import { waitUntil } from "../helpers/wait";
import { periodStart, usageLimitPrefix } from "../../lib/usage-limits";
import type { AuthInfo } from "../../lib/permissions";

describeWith(["postgres", "rabbitmq", "redis"])("budgets across two ai replicas", () => {
	const up = new FakeOpenAI();
	let cluster: TestCluster;
	let sql: pg.Client;
	let ai1: ClusterNode, ai2: ClusterNode;
	let caller: ServiceBroker;
	let admin: AuthInfo;

	const call = (action: string, params: any, opts: Record<string, unknown> = {}) =>
		caller.call<any, any>(action, params, { ...as(admin), ...opts });

	beforeAll(async () => {
		const base = await up.start();
		up.set("up-gpt", { content: "twelve chars", delayMs: 50 });
		cluster = await startTestCluster("ulimc", { CACHER: REDIS_URL });
		sql = new pg.Client({ connectionString: cluster.db.url });
		await sql.connect();
		const aiEnv = { AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" };
		ai1 = cluster.start("ai-1", "ai", aiEnv);
		ai2 = cluster.start("ai-2", "ai", aiEnv);
		const core = cluster.start("core", "auth,secrets,usage", {
			MASTER_KEY: crypto.randomBytes(32).toString("base64")
		});
		await Promise.all([core, ai1, ai2].map(n => n.ready));
		caller = await cluster.caller(["auth", "secrets", "ai", "usage-limits", "usage-budgets"]);
		await cluster.servedBy("ai.complete", [ai1, ai2]);
		admin = await cluster.register("budgets@example.com");
		await call("secrets.create", { environment: "production", name: "UP_KEY", value: "sk-up-cluster-1" });
		const p = await call("ai-providers.create", { name: "fake", base_url: base, api_key_secret: "UP_KEY" });
		// Prices in dollars per million tokens: a request's cost is a whole number of thousandths of a cent.
		await call("ai-deployments.create", {
			provider_id: p.id,
			name: "gpt",
			provider_model: "up-gpt",
			input_price: 1000,
			output_price: 2000
		});
	}, 120_000);

	afterAll(async () => {
		await sql?.end();
		await up.stop();
		await cluster?.stop();
	});

	test("50 concurrent completions, 25 on each replica, against a budget with room for 10: 10 run, 40 are refused naming it", async () => {
		// Each request is the same: its estimate (prompt + max_tokens at the deployment's prices) is what it costs.
		const request = { model: "gpt", ...ask("what does this cost?"), max_tokens: 3 };
		const probe = await call("ai.complete", request, { nodeID: ai1.nodeID });
		expect(probe.usage.completion_tokens).toBe(3);
		const cost = (probe.usage.prompt_tokens * 1000 + probe.usage.completion_tokens * 2000) / 1e6;
		const budget = await call("usage-budgets.create", {
			name: "Ten requests",
			scope: "organization",
			period: "day",
			amount: cost * 10
		});
		// ai-1 has the organization's limits (none) in memory from the probe: the write's broadcast drops them.
		const results = await Promise.all(
			Array.from({ length: 50 }, (_, i) =>
				call("ai.complete", request, { nodeID: i % 2 ? ai1.nodeID : ai2.nodeID }).then(
					answer => ({ ok: true as const, answer }),
					error => ({ ok: false as const, error })
				)
			)
		);
		const through = results.filter(r => r.ok);
		const refused = results.flatMap(r => (r.ok ? [] : [r.error]));
		expect(through.length).toBe(10);
		expect(refused.length).toBe(40);
		for (const err of refused)
			expect(err).toMatchObject({
				code: 402,
				type: "BUDGET_EXCEEDED",
				data: {
					details: { budget: { id: budget.id, name: "Ten requests", scope: "organization", period: "day" } }
				}
			});
		// Every refusal is in the completion log (written in batches), as a rate-limited request is.
		await waitUntil(
			"40 rate-limited log rows",
			async () =>
				(await sql.query("SELECT count(*)::int AS n FROM ai_completion_logs WHERE status = 'rate_limited'"))
					.rows[0].n,
			n => n === 40
		);

		// The durable count (from ai.usage.recorded over RabbitMQ) and the live counter agree on ten requests' cost.
		const durable = await waitUntil(
			"the consumer to count ten requests",
			async () =>
				Number(
					(
						await sql.query(
							"SELECT coalesce(sum(used), 0) AS used FROM usage_limit_consumption WHERE limit_id = $1",
							[budget.id]
						)
					).rows[0].used
				),
			used => used >= cost * 10 - 1e-9
		);
		expect(durable).toBeCloseTo(cost * 10, 9);
		const redis = new Redis(REDIS_URL);
		try {
			const key = `${usageLimitPrefix(cluster.namespace)}:${budget.id}:${periodStart("day").getTime()}`;
			const [used, reserved] = await redis.hmget(key, "used", "reserved");
			expect([Number(used) / 1e9, Number(reserved)]).toEqual([cost * 10, 0]);
		} finally {
			redis.disconnect();
		}
		const exceeded = await waitUntil(
			"usage.budget.exceeded in the outbox",
			async () =>
				(
					await sql.query("SELECT payload FROM outbox WHERE payload->>'type' = 'usage.budget.exceeded'")
				).rows.map(r => r.payload),
			rows => rows.length > 0
		);
		expect(exceeded).toEqual([
			expect.objectContaining({ budgetId: budget.id, name: "Ten requests", threshold: 1 })
		]);
	}, 120_000);
});
