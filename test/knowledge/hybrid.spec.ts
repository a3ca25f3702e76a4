// knowledge with the embeddings module: the indexer feeds the organization's "knowledge" collection (created on
// first use) as service knowledge, search fuses the vector ranking with its full-text one, and a vector neighbour
// from a category the caller may not read never appears. Unpublishing takes the article out of the collection.
import { knowledgeWorld, WITH_EMBEDDINGS } from "./setup";
import { describeWith, DATABASE_SERVICES } from "../helpers/infra";
import { waitUntil } from "../helpers/wait";
import { ROOT } from "../helpers/broker";
import path from "path";

describeWith(DATABASE_SERVICES)("knowledge search with embeddings (hybrid)", () => {
	let w: Awaited<ReturnType<typeof knowledgeWorld>>;

	beforeAll(async () => {
		w = await knowledgeWorld({ EMBEDDINGS_JOB_POLL_MS: "100" }, WITH_EMBEDDINGS);
	});
	afterAll(() => w?.stop());

	test("hybrid ranking over readable categories only; unpublish removes the embedding", async () => {
		const org = await w.organization("acme");
		const owner = await w.principal(org, "owner");
		const viewer = await w.principal(org, "viewer");
		const secret = await w.team(org, "secret");
		const insider = await w.principal(org, "viewer", [secret]);
		const open = await w.call("knowledge-categories.create", { name: "open" }, owner);
		const closed = await w.call("knowledge-categories.create", { name: "closed" }, owner);
		await w.call(
			"knowledge-categories.setGrants",
			{ id: closed.id, grants: [{ team_id: secret, access: "read" }] },
			owner
		);
		const made: Record<string, string[]> = { open: [], closed: [] };
		const bodies = ["The zebra herd migrates.", "Giraffes eat leaves.", "Lions rest in the shade."];
		for (const [where, cat] of [
			["open", open],
			["closed", closed]
		] as const)
			for (const [i, body] of bodies.entries()) {
				const a = await w.call(
					"knowledge-articles.create",
					{ category_id: cat.id, title: `${where} ${i}`, body, status: "published" },
					owner
				);
				made[where].push(a.id);
			}
		await w.embedded(org, 6);

		const seen = await w.call("knowledge.search", { query: "zebra herd", k: 10 }, viewer);
		expect(seen.mode).toBe("hybrid");
		const ids = seen.results.map((r: any) => r.id);
		expect(ids.filter((id: string) => made.closed.includes(id))).toEqual([]);
		// The article that matches both ways ranks first, with both scores.
		expect(seen.results[0]).toMatchObject({
			id: made.open[0],
			scores: { fulltext: expect.any(Number), vector: expect.any(Number) },
			snippet: expect.stringContaining("<mark>zebra</mark>")
		});
		// Vector neighbours without the words come from readable categories too, with their own text as snippet.
		for (const r of seen.results.slice(1)) {
			expect(made.open).toContain(r.id);
			expect(r.scores.fulltext).toBeUndefined();
			expect(bodies).toContain(r.snippet);
		}
		const inside = await w.call("knowledge.search", { query: "zebra herd", k: 10 }, insider);
		expect(inside.results.map((r: any) => r.id)).toEqual(expect.arrayContaining([made.open[0], made.closed[0]]));

		await w.call("knowledge-articles.unpublish", { id: made.open[0] }, owner);
		await w.embedded(org, 5);
		await waitUntil(
			"the unpublished article out of search",
			() => w.call("knowledge.search", { query: "zebra", k: 10 }, viewer),
			r => !r.results.some((x: any) => x.id === made.open[0])
		);
	});

	test("articles published while the embeddings module is away are embedded once it is back", async () => {
		const org = await w.organization("later");
		const owner = await w.principal(org, "owner");
		const cat = await w.call("knowledge-categories.create", { name: "docs" }, owner);
		const embeddings = w.t.broker.getLocalService("embeddings")!;
		await w.t.broker.destroyService(embeddings);
		const a = await w.call(
			"knowledge-articles.create",
			{ category_id: cat.id, title: "Offline", body: "Written while embeddings were away.", status: "published" },
			owner
		);
		await w.indexed(a.id, 1);
		const { rows } = await w.sql.query("SELECT article_id FROM kb_embedding_queue WHERE article_id = $1", [a.id]);
		expect(rows).toHaveLength(1);
		w.t.broker.loadService(path.resolve(ROOT, "services/embeddings/embeddings.service.ts"));
		await w.t.broker.waitForServices(["embeddings"]);
		// The sweep every few seconds picks it up.
		await w.embedded(org, 1);
		await waitUntil(
			"the queue emptied",
			async () => (await w.sql.query("SELECT 1 FROM kb_embedding_queue WHERE article_id = $1", [a.id])).rowCount,
			n => n === 0
		);
	});
});
