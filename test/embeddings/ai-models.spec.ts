// Embeddings through an AI deployment and rerank through a chat deployment, against the fake OpenAI upstream: the
// module calls ai.embed / ai.complete as its service for the organization, in batches.
import crypto from "crypto";
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { FakeOpenAI } from "../helpers/fake-openai";
import { AI_STACK } from "../helpers/ai";
import type { AuthInfo } from "../../lib/permissions";
import { getDb } from "../../lib/db";
import { EMBEDDINGS_SERVICES, registerOrg } from "./helpers";

jest.setTimeout(60_000);

describeWith(["postgres"])("embeddings with AI deployments (fake OpenAI upstream)", () => {
	const up = new FakeOpenAI();
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let owner: AuthInfo, viewer: AuthInfo;
	let collection: any;
	const call = (action: string, params: object, auth: AuthInfo = owner) =>
		t.broker.call<any, any>(action, params, as(auth));
	const sql = async (text: string, params: unknown[]) => (await getDb()).query(text, params);

	beforeAll(async () => {
		const base = await up.start();
		db = await createTestDatabase();
		const files = [...new Set([...AI_STACK, ...EMBEDDINGS_SERVICES])];
		t = await createTestBroker(
			{
				DATABASE_URL: db.url,
				MASTER_KEY: crypto.randomBytes(32).toString("base64"),
				AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
				AI_LOG_BATCH_MS: "0",
				EMBEDDINGS_BATCH_SIZE: "2"
			},
			files
		);
		const org = await registerOrg(t.broker, "emb-ai@example.com");
		owner = org("owner");
		viewer = org("viewer");
		await call("secrets.create", { environment: "production", name: "KEY", value: "sk-emb-test-1" });
		const p = await call("ai-providers.create", { name: "p", base_url: base, api_key_secret: "KEY" });
		await call("ai-deployments.create", {
			provider_id: p.id,
			name: "embedder",
			provider_model: "up-embed",
			kind: "embedding"
		});
		await call("ai-deployments.create", { provider_id: p.id, name: "judge", provider_model: "up-judge" });
		const model = await call("embeddings-models.create", { name: "fake-8", deployment: "embedder", dimensions: 8 });
		expect(model).toMatchObject({ kind: "deployment", deployment: "embedder", dimensions: 8 });
		collection = await call("embeddings-collections.create", { name: "ai", modelId: model.id });
	}, 60_000);

	afterAll(async () => {
		await t?.stop();
		await up.stop();
		await db?.drop();
	});

	test("documents are embedded by the deployment in batches; a viewer's search embeds the query the same way", async () => {
		up.requests.length = 0;
		const docs = ["red apples", "green pears", "yellow bananas"].map((text, i) => ({ sourceId: `f${i}`, text }));
		expect(await call("embeddings.upsert", { id: collection.id, documents: docs })).toMatchObject({ created: 3 });
		// EMBEDDINGS_BATCH_SIZE=2: three chunks in two calls.
		expect(up.count(undefined, "/v1/embeddings")).toBe(2);
		// The fake upstream's vector of a text is fixed: the query equal to a document's text finds it first.
		const r = await call("embeddings.search", { id: collection.id, query: "green pears", mode: "vector" }, viewer);
		expect(r.results[0]).toMatchObject({ sourceId: "f1" });
		expect(r.results[0].scores.vector).toBeCloseTo(1, 5);
	});

	test("rerank orders the candidates by the chat deployment's scores", async () => {
		up.set("up-judge", { content: 'Sure: {"scores": [1, 9, 5]}' });
		const r = await call("embeddings.search", {
			id: collection.id,
			query: "fruit",
			mode: "fulltext",
			k: 3,
			rerank: { deployment: "judge" }
		});
		// Full-text finds nothing for "fruit"; vector mode gives three candidates in a known order.
		expect(r.results).toEqual([]);
		const plain = await call("embeddings.search", { id: collection.id, query: "red apples", mode: "vector", k: 3 });
		const reranked = await call("embeddings.search", {
			id: collection.id,
			query: "red apples",
			mode: "vector",
			k: 3,
			rerank: { deployment: "judge" }
		});
		const order = plain.results.map((h: any) => h.sourceId);
		expect(reranked.results.map((h: any) => h.sourceId)).toEqual([order[1], order[2], order[0]]);
		expect(reranked.results.map((h: any) => h.scores.rerank)).toEqual([9, 5, 1]);
		expect(reranked.results[0].scores.vector).toBeDefined();
		const asked = up.requests.filter(q => q.path === "/v1/chat/completions").at(-1)!;
		expect(JSON.stringify(asked.body.messages)).toContain("red apples");

		// Another query (an identical request may be answered from the ai module's cache).
		up.set("up-judge", { content: "I cannot rate these." });
		await expect(
			call("embeddings.search", {
				id: collection.id,
				query: "green pears",
				mode: "vector",
				rerank: { deployment: "judge" }
			})
		).rejects.toMatchObject({ message: expect.stringContaining("rerank deployment judge") });
	});

	test("a model naming a missing deployment, or one answering other dimensions, is refused at creation (422)", async () => {
		const refused = (params: object, field: string) =>
			expect(call("embeddings-models.create", params)).rejects.toMatchObject({
				code: 422,
				data: [expect.objectContaining({ field })]
			});
		await refused({ name: "ghost", deployment: "no-such-deployment", dimensions: 8 }, "deployment");
		await refused({ name: "fake-16", deployment: "embedder", dimensions: 16 }, "dimensions");
		// A chat deployment cannot embed.
		await refused({ name: "judge-8", deployment: "judge", dimensions: 8 }, "deployment");
		const model = await call("embeddings-models.create", {
			name: "fake-8b",
			deployment: "embedder",
			dimensions: 8
		});
		await expect(
			call("embeddings-models.update", { id: model.id, deployment: "no-such-deployment" })
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "deployment" })] });
		const names = (await call("embeddings-models.list", {})).rows.map((m: any) => m.name);
		expect(names).not.toContain("ghost");
		expect(names).not.toContain("fake-16");
	});

	test("a deployment that answers other dimensions later fails the write and stores nothing", async () => {
		// As if the deployment had been pointed at another model after the check: the row is written directly.
		const { rows } = await sql(
			`INSERT INTO emb_models (organization_id, name, kind, deployment, dimensions)
			SELECT organization_id, 'fake-16', 'deployment', 'embedder', 16 FROM emb_collections WHERE id = $1 RETURNING id`,
			[collection.id]
		);
		const c = await call("embeddings-collections.create", { name: "wrong", modelId: rows[0].id });
		await expect(
			call("embeddings.upsert", { id: c.id, documents: [{ sourceId: "x", text: "anything" }] })
		).rejects.toMatchObject({ message: expect.stringContaining("8 dimensions, 16 expected") });
		expect((await call("embeddings-collections.get", { id: c.id })).documentCount).toBe(0);
	});
});
