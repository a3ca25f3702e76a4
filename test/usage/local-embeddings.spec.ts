// Metering of the built-in (local) embedder: embedding.usage.recorded events on embedding.events, recorded by the
// usage service exactly once whatever the redelivery, as kind "embedding" (texts counted as embeddings, no model
// request), priced by the price list (nothing without a row); and an ingest with the local embedder showing in the
// usage reports. Embeddings through a deployment are metered from ai.events (test/usage/usage.spec.ts).
import crypto from "crypto";
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, DATABASE_ENGINE, DATABASE_SERVICES, createTestDatabase } from "../helpers/infra";
import { waitUntil } from "../helpers/wait";
import { getDb } from "../../lib/db";
import type { AuthInfo } from "../../lib/permissions";
import { EMBEDDINGS_SERVICES, registerOrg } from "../embeddings/helpers";
import { usageEvent } from "./events";

jest.setTimeout(120_000);

const q = async <T = any>(sql: string, params: unknown[] = []) => (await (await getDb()).query<T>(sql, params)).rows;
const MEASURES =
	"sum(input_tokens)::int AS input_tokens, sum(requests)::int AS requests, sum(embeddings)::int AS embeddings, " +
	"sum(cost)::float AS cost";

describeWith(DATABASE_SERVICES)(`metering of the local embedder (embedding.events → usage, ${DATABASE_ENGINE})`, () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let owner: AuthInfo, other: AuthInfo;
	const call = (action: string, params: object, auth: AuthInfo = owner) =>
		t.broker.call<any, any>(action, params, as(auth));
	const sendTo = (channel: string, e: object) => (t.broker as any).sendToChannel(channel, e) as Promise<void>;
	const recorded = (ids: string[]) =>
		waitUntil(
			`${ids.length} usage events recorded`,
			async () => (await q("SELECT count(*)::int AS n FROM usage_events WHERE id = ANY($1)", [ids]))[0].n,
			n => n === ids.length
		);
	const localEvent = (organizationId: string, texts: number, tokens: number, time: string, model = "local-hash") => ({
		type: "embedding.usage.recorded",
		id: crypto.randomUUID(),
		time,
		organizationId,
		modelId: "00000000-0000-4000-8000-000000000384",
		model,
		texts,
		tokens
	});

	beforeAll(async () => {
		db = await createTestDatabase();
		t = await createTestBroker({ ...db.env, EMBEDDINGS_JOB_POLL_MS: "100", CHANNELS_RETRY_BASE_MS: "5" }, [
			...EMBEDDINGS_SERVICES,
			"services/usage/usage.service.ts",
			"services/usage/pricing.service.ts"
		]);
		owner = (await registerOrg(t.broker, "local-emb-a@example.com"))("owner");
		other = (await registerOrg(t.broker, "local-emb-b@example.com"))("owner");
	});

	afterAll(async () => {
		await t?.stop();
		await db?.drop();
	});

	test("replaying local-embedder events 1 to 5 times gives the totals of each once, beside ai.events embeddings", async () => {
		const org = owner.organizationId!;
		const base = Date.UTC(2026, 4, 31, 22); // crosses a day and a month
		// $2 per million input tokens for the local embedder from the start: its tokens are priced like any model's.
		await call("usage-pricing.create", {
			model: "local-hash-priced",
			input_price: 2,
			output_price: 0,
			effective_from: new Date(base - 3_600_000).toISOString()
		});
		const local = Array.from({ length: 60 }, (_, i) =>
			localEvent(
				org,
				1 + (i % 7),
				100 * (1 + (i % 7)),
				new Date(base + i * 5 * 60_000).toISOString(),
				i % 2 ? "local-hash" : "local-hash-priced"
			)
		);
		// Embeddings through a deployment arrive on ai.events only: one request and one embedding each.
		const viaAi = Array.from({ length: 10 }, (_, i) =>
			usageEvent(org, {
				kind: "embedding",
				model: "text-embedding",
				inputTokens: 50,
				outputTokens: 0,
				cost: 0.001,
				occurredAt: new Date(base + i * 11 * 60_000).toISOString()
			})
		);
		const deliveries = [
			...local.flatMap((e, i) => Array.from({ length: 1 + (i % 5) }, () => ["embedding.events", e] as const)),
			...viaAi.flatMap((e, i) => Array.from({ length: 1 + (i % 5) }, () => ["ai.events", e] as const))
		].sort(() => Math.random() - 0.5);
		await Promise.all(deliveries.map(([ch, e]) => sendTo(ch, e)));
		await recorded([...local, ...viaAi].map(e => e.id));

		const texts = local.reduce((n, e) => n + e.texts, 0);
		const tokens = local.reduce((n, e) => n + e.tokens, 0);
		const pricedTokens = local.filter(e => e.model === "local-hash-priced").reduce((n, e) => n + e.tokens, 0);
		const expected = {
			input_tokens: tokens + 10 * 50,
			requests: 10, // the local embedder's writes are no model requests
			embeddings: texts + 10,
			cost: (pricedTokens * 2) / 1e6 + 10 * 0.001
		};
		for (const table of ["usage_aggregates_hourly", "usage_aggregates_daily", "usage_aggregates_monthly"]) {
			const [got] = await q(`SELECT ${MEASURES} FROM ${table} WHERE organization_id = $1`, [org]);
			expect([table, { ...got, cost: Number(got.cost.toFixed(9)) }]).toEqual([
				table,
				{ ...expected, cost: Number(expected.cost.toFixed(9)) }
			]);
		}
		// Each local event once, of kind embedding, at zero without a price row.
		const rows = await q(
			"SELECT model, kind, texts_embedded, cost::float AS cost FROM usage_events WHERE id = ANY($1) ORDER BY id",
			[local.map(e => e.id)]
		);
		expect(rows).toHaveLength(local.length);
		expect(rows.every((r: any) => r.kind === "embedding")).toBe(true);
		expect(rows.filter((r: any) => r.model === "local-hash").every((r: any) => r.cost === 0)).toBe(true);
		// Another organization sees none of it.
		const theirs = await call(
			"usage.summary",
			{ from: new Date(base - 86_400_000).toISOString(), to: new Date(base + 2 * 86_400_000).toISOString() },
			other
		);
		expect(theirs).toMatchObject({ embeddings: 0, input_tokens: 0 });
	});

	test("an ingest with the local embedder shows in the usage reports as embeddings of local-hash", async () => {
		const c = await call("embeddings-collections.create", { name: "metered" });
		const documents = Array.from({ length: 45 }, (_, i) => ({
			sourceId: `d${i}`,
			text: `document ${i} about ${["rivers", "mountains", "forests"][i % 3]} and the number ${i}. `.repeat(3)
		}));
		const job = await call("embeddings.ingest", { id: c.id, documents });
		await waitUntil(
			"the ingest finished",
			() => call("embeddings-jobs.get", { id: job.id }),
			j => j.status === "completed",
			60_000
		);
		const [{ chunks, tokens }] = await q(
			"SELECT count(*)::int AS chunks, sum(tokens)::int AS tokens FROM emb_chunks WHERE collection_id = $1",
			[c.id]
		);
		expect(chunks).toBeGreaterThanOrEqual(45);
		const from = new Date(Date.now() - 86_400_000).toISOString();
		const to = new Date(Date.now() + 86_400_000).toISOString();
		const byModel = () =>
			call("usage.series", {
				from,
				to,
				granularity: "day",
				group_by: "model",
				metrics: "embeddings,input_tokens"
			});
		const s = await waitUntil(
			"the ingest's embeddings metered",
			byModel,
			r =>
				r.points
					.filter((p: any) => p.key === "local-hash")
					.reduce((n: number, p: any) => n + p.embeddings, 0) === chunks
		);
		const local = s.points.filter((p: any) => p.key === "local-hash");
		expect(local.reduce((n: number, p: any) => n + p.input_tokens, 0)).toBe(tokens);
		const summary = await call("usage.summary", { from, to });
		expect(summary.by_kind).toEqual(
			expect.arrayContaining([expect.objectContaining({ kind: "embedding", embeddings: chunks, requests: 0 })])
		);
		// Upserting the same documents again embeds nothing, and meters nothing more.
		const again = await call("embeddings.upsert", { id: c.id, documents: documents.slice(0, 5) });
		expect(again.unchanged).toBe(5);
		const changed = await call("embeddings.upsert", {
			id: c.id,
			documents: [{ sourceId: "d0", text: "a changed first document" }]
		});
		expect(changed.updated).toBe(1);
		await waitUntil(
			"the changed document's chunk metered",
			byModel,
			r =>
				r.points
					.filter((p: any) => p.key === "local-hash")
					.reduce((n: number, p: any) => n + p.embeddings, 0) ===
				chunks + 1
		);
	});
});
