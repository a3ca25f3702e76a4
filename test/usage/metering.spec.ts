// End to end on real PostgreSQL: completions through the ai module against a fake OpenAI upstream send
// ai.usage.recorded through the outbox; the usage module records each in usage_events and the aggregates — a
// stream the client cancels midway included, billed for the tokens it produced — priced by the organization's own
// price list when it has a row for the model.
import crypto from "crypto";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { FakeOpenAI } from "../helpers/fake-openai";
import { AI_STACK, ask } from "../helpers/ai";
import { waitUntil } from "../helpers/wait";
import { getDb } from "../../lib/db";

jest.setTimeout(60_000);

const q = async <T = any>(sql: string, params: unknown[] = []) => (await (await getDb()).query<T>(sql, params)).rows;

describeWith(["postgres"])("metering of AI calls (ai module → outbox → usage, in-process)", () => {
	const up = new FakeOpenAI();
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	let auth: any;
	const call = (action: string, params: any) => broker.call<any, any>(action, params, as(auth));
	// The usage event the ai module sent for a request, and the row the usage module recorded for it.
	const meteredOf = async (requestId: string) => {
		const [event] = await waitUntil(
			`the usage event of ${requestId}`,
			() =>
				q(
					"SELECT payload FROM outbox WHERE payload->>'type' = 'ai.usage.recorded' AND payload->>'requestId' = $1",
					[requestId]
				),
			rows => rows.length === 1
		);
		const [row] = await waitUntil(
			`the usage row of ${requestId}`,
			() => q("SELECT * FROM usage_events WHERE id = $1", [event.payload.id]),
			rows => rows.length === 1
		);
		return { event: event.payload, row };
	};

	beforeAll(async () => {
		const base = await up.start();
		db = await createTestDatabase();
		const t = await createTestBroker(
			{ DATABASE_URL: db.url, AI_LOG_BATCH_MS: "0", AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" },
			[...AI_STACK, "services/usage/usage.service.ts", "services/usage/pricing.service.ts"]
		);
		broker = t.broker;
		stop = t.stop;
		const owner: any = await broker.call("auth.register", {
			email: "meter@example.com",
			password: "correct horse battery",
			name: "Meter"
		});
		auth = await broker.call("auth.resolve", { token: owner.accessToken, organizationId: owner.organization.id });
		await call("secrets.create", { environment: "production", name: "FAKE_OPENAI_KEY", value: "sk-fake-1234" });
		const p = await call("ai-providers.create", {
			name: "fake",
			base_url: base,
			api_key_secret: "FAKE_OPENAI_KEY"
		});
		await call("ai-deployments.create", {
			provider_id: p.id,
			name: "smart",
			provider_model: "a-smart",
			input_price: 2,
			output_price: 8,
			cached_input_price: 1
		});
	});

	afterAll(async () => {
		await stop?.();
		await up.stop();
		await db?.drop();
	});

	test("a completion lands in usage_events and every aggregate, at the deployment's price", async () => {
		const requestId = `c-${crypto.randomUUID()}`;
		const answer = await call("ai.complete", { model: "smart", ...ask("count the tokens"), requestId });
		const { event, row } = await meteredOf(requestId);
		expect(row).toMatchObject({
			organization_id: auth.organizationId,
			user_id: auth.userId,
			kind: "completion",
			model: event.model,
			status: "success",
			input_tokens: answer.usage.prompt_tokens,
			output_tokens: answer.usage.completion_tokens,
			cost: event.cost,
			pricing_id: null
		});
		expect(event.cost).toBeGreaterThan(0);
		for (const table of ["usage_aggregates_hourly", "usage_aggregates_daily", "usage_aggregates_monthly"]) {
			const [agg] = await q(
				`SELECT requests, input_tokens, output_tokens, cost FROM ${table} WHERE organization_id = $1 AND model = $2`,
				[auth.organizationId, event.model]
			);
			expect([table, agg]).toEqual([
				table,
				{
					requests: 1,
					input_tokens: answer.usage.prompt_tokens,
					output_tokens: answer.usage.completion_tokens,
					cost: event.cost
				}
			]);
		}
	});

	test("a stream cancelled midway is metered for what it produced, at the organization's price", async () => {
		const [{ model }] = await q("SELECT model FROM usage_events LIMIT 1");
		await call("usage-pricing.create", {
			model,
			input_price: 1000,
			output_price: 1000,
			effective_from: new Date(Date.now() - 60_000).toISOString()
		});
		up.set("a-smart", {
			chunkDelayMs: 150,
			content: "one two three four five six seven eight nine ten eleven twelve"
		});
		const requestId = `s-${crypto.randomUUID()}`;
		const stream: any = await call("ai.stream", { model: "smart", ...ask("a long answer"), requestId });
		let chunks = 0;
		for await (const _ of stream) if (++chunks >= 3) break; // a few chunks, then the client goes away
		const { event, row } = await meteredOf(requestId);
		expect(event.status).toBe("cancelled");
		expect(event.outputTokens).toBeGreaterThan(0);
		expect(row).toMatchObject({ status: "cancelled", output_tokens: event.outputTokens });
		// Priced by the organization's row (1000 $/M both ways), not by the deployment's 2 and 8.
		expect(row.pricing_id).not.toBeNull();
		expect(row.cost).toBeCloseTo(((event.inputTokens + event.outputTokens) * 1000) / 1_000_000, 9);
		const [agg] = await q(
			"SELECT sum(requests)::int AS requests FROM usage_aggregates_daily WHERE organization_id = $1",
			[auth.organizationId]
		);
		expect(agg.requests).toBe(2);
	});
});
