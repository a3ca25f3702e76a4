// embeddings: collections, upserts by source id with content hashes, search modes and filters, tenancy and
// validation, on an in-process broker and real PostgreSQL with the built-in local embedder.
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, DATABASE_ENGINE, DATABASE_SERVICES, createTestDatabase } from "../helpers/infra";
import { getDb } from "../../lib/db";
import type { AuthInfo } from "../../lib/permissions";
import { EMBEDDINGS_SERVICES, registerOrg } from "./helpers";

jest.setTimeout(60_000);

const WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split(
	" "
);

describeWith(DATABASE_SERVICES)(`embeddings (in-process broker, ${DATABASE_ENGINE})`, () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let owner: AuthInfo, viewer: AuthInfo, other: AuthInfo;
	const call = (action: string, params: object, auth: AuthInfo = owner) =>
		t.broker.call<any, any>(action, params, as(auth));
	const rejects = (p: Promise<unknown>, code: number, field?: string) =>
		expect(p).rejects.toMatchObject({ code, ...(field ? { data: [expect.objectContaining({ field })] } : {}) });

	beforeAll(async () => {
		db = await createTestDatabase();
		t = await createTestBroker({ ...db.env, EMBEDDINGS_JOB_POLL_MS: "100" }, EMBEDDINGS_SERVICES);
		const a = await registerOrg(t.broker, "emb-a@example.com");
		owner = a("owner");
		viewer = a("viewer");
		other = (await registerOrg(t.broker, "emb-b@example.com"))("owner");
	});

	afterAll(async () => {
		await t?.stop();
		await db?.drop();
	});

	test("ensure returns one collection per name on the local-hash model, also when called at once", async () => {
		const all = await Promise.all([1, 2, 3, 4, 5].map(() => call("embeddings-collections.ensure", { name: "kb" })));
		expect(new Set(all.map(c => c.id)).size).toBe(1);
		expect(all[0]).toMatchObject({ name: "kb", modelName: "local-hash", dimensions: 384, status: "ready" });
		const theirs = await call("embeddings-collections.ensure", { name: "kb" }, other);
		expect(theirs.id).not.toBe(all[0].id);
		const models = await call("embeddings-models.list", {}, viewer);
		expect(models.rows).toEqual([expect.objectContaining({ name: "local-hash", builtIn: true, dimensions: 384 })]);
	});

	test("upsert embeds new and changed documents only; metadata changes reach the chunks without re-embedding", async () => {
		const c = await call("embeddings-collections.create", { name: "upserts" });
		const docs = [
			{ sourceId: "a", text: "The quick brown fox jumps over the lazy dog", metadata: { team: "x" } },
			{ sourceId: "b", text: "Vector databases store embeddings for similarity search" }
		];
		const first = await call("embeddings.upsert", { id: c.id, documents: docs });
		expect(first).toMatchObject({ created: 2, updated: 0, unchanged: 0 });
		expect(first.documents.map((d: any) => [d.sourceId, d.status])).toEqual([
			["a", "created"],
			["b", "created"]
		]);
		const chunks = async () =>
			(
				await (
					await getDb()
				).query(
					`SELECT c.id, d.source_id, c.metadata FROM emb_chunks c JOIN emb_documents d ON d.id = c.document_id
					WHERE c.collection_id = $1 ORDER BY d.source_id, c.index`,
					[c.id]
				)
			).rows;
		const before = await chunks();
		expect(before.length).toBe(2);

		const again = await call("embeddings.upsert", {
			id: c.id,
			documents: [docs[0], { ...docs[1], text: "Vector databases store embeddings; HNSW makes search fast" }]
		});
		expect(again).toMatchObject({ created: 0, updated: 1, unchanged: 1 });
		const after = await chunks();
		expect(after[0].id).toBe(before[0].id); // a: unchanged, the same chunk row (not re-embedded)
		expect(after[1].id).not.toBe(before[1].id); // b: changed, new chunks

		const moved = await call("embeddings.upsert", {
			id: c.id,
			documents: [{ ...docs[0], metadata: { team: "y" } }]
		});
		expect(moved).toMatchObject({ updated: 1 });
		const last = await chunks();
		expect(last[0]).toMatchObject({ id: before[0].id, metadata: { team: "y" } });

		const doc = await call("embeddings-documents.get", { id: first.documents[0].id }, viewer);
		expect(doc).toMatchObject({ sourceId: "a", chunkCount: 1, metadata: { team: "y" } });
		expect(doc.chunks[0]).toMatchObject({ index: 0, text: docs[0].text });
		const listed = await call("embeddings-documents.list", { collectionId: c.id }, viewer);
		expect(listed).toMatchObject({ total: 2 });

		expect(await call("embeddings.remove", { collectionId: c.id, sourceIds: ["a", "nope"] })).toEqual({
			removed: 1
		});
		expect((await chunks()).map(r => r.source_id)).toEqual(["b"]);
		const events = (
			await (
				await getDb()
			).query("SELECT payload->>'type' AS type FROM outbox WHERE channel = 'embedding.events' ORDER BY id")
		).rows.map(r => r.type);
		expect(events).toEqual(
			expect.arrayContaining([
				"embedding.document.created",
				"embedding.document.updated",
				"embedding.document.deleted"
			])
		);
	});

	test("markdown is chunked by headings and code by functions; a search hit names its heading", async () => {
		const c = await call("embeddings-collections.create", { name: "kinds" });
		const markdown = [
			"# Guide",
			"",
			"## Install",
			"",
			"Run the installer and accept the licence. ".repeat(40),
			"",
			"## Configure",
			"",
			"Set the port and the database address in the settings file. ".repeat(40)
		].join("\n");
		const code = [
			"export function parseConfig(text: string) {",
			...Array.from({ length: 60 }, (_, i) => `\tconst line${i} = text.split("\\n")[${i}];`),
			"\treturn {};",
			"}",
			"",
			"export function startServer(port: number) {",
			...Array.from({ length: 60 }, (_, i) => `\tconsole.log("listening", port + ${i});`),
			"}"
		].join("\n");
		const r = await call("embeddings.upsert", {
			id: c.id,
			documents: [
				{ sourceId: "guide.md", text: markdown, kind: "markdown", title: "Guide" },
				{ sourceId: "server.ts", text: code, kind: "code", path: "src/server.ts" }
			]
		});
		const guide = await call("embeddings-documents.get", { id: r.documents[0].id });
		const headings = new Set(guide.chunks.map((k: any) => k.heading));
		expect(headings).toEqual(new Set(["Guide", "Guide > Install", "Guide > Configure"]));
		const server = await call("embeddings-documents.get", { id: r.documents[1].id });
		// Split by function (the chunker's own tests: test/text); a chunk names the functions it holds.
		expect(server.chunks[0].symbol).toBe("parseConfig");
		expect(server.chunks.at(-1).symbol).toBe("startServer");
		const hit = await call("embeddings.search", { id: c.id, query: "database address settings", k: 1 });
		expect(hit.results[0]).toMatchObject({ sourceId: "guide.md", heading: "Guide > Configure" });
	});

	describe("search", () => {
		let c: any;
		beforeAll(async () => {
			c = await call("embeddings-collections.create", { name: "search" });
			// 2000 one-chunk documents; `bucket` takes 100 values, so a bucket is 1% of the collection.
			const docs = Array.from({ length: 2000 }, (_, i) => ({
				sourceId: `d${i}`,
				title: `doc ${i}`,
				text: Array.from({ length: 12 }, (_, j) => WORDS[(i * 7 + j * 3 + ((i * j) % 5)) % WORDS.length]).join(
					" "
				),
				metadata: { bucket: i % 100, even: i % 2 === 0 }
			}));
			docs[1234].text = "zebra crossing unicorn meadow";
			for (let i = 0; i < docs.length; i += 100)
				await call("embeddings.upsert", { id: c.id, documents: docs.slice(i, i + 100) });
		});

		test("vector, full-text and hybrid each find the document that matches, with their scores", async () => {
			for (const mode of ["vector", "fulltext", "hybrid"]) {
				const r = await call("embeddings.search", { id: c.id, query: "unicorn zebra", mode, k: 5 }, viewer);
				expect(r.mode).toBe(mode);
				expect(r.results[0]).toMatchObject({ sourceId: "d1234", rank: 1, title: "doc 1234" });
				if (mode !== "fulltext") expect(r.results[0].scores.vector).toBeGreaterThan(0.3);
				if (mode !== "vector") expect(r.results[0].scores.fulltext).toBeGreaterThan(0);
			}
			// Weights: full-text alone (vector weight 0) ranks only what contains the words.
			const r = await call("embeddings.search", {
				id: c.id,
				query: "unicorn",
				weights: { vector: 0, fulltext: 1 },
				k: 3
			});
			expect(r.results[0].sourceId).toBe("d1234");
			expect(r.results.slice(1).every((h: any) => h.score === 0)).toBe(true);
		});

		test("a filter that keeps 1% of the collection still returns k rows, all of them matching", async () => {
			for (const mode of ["vector", "hybrid"]) {
				const r = await call("embeddings.search", {
					id: c.id,
					query: "alpha bravo charlie",
					mode,
					k: 10,
					filter: { bucket: 7 }
				});
				expect(r.results).toHaveLength(10);
				expect(r.results.every((h: any) => h.metadata.bucket === 7)).toBe(true);
			}
			const r = await call("embeddings.search", {
				id: c.id,
				query: "delta echo",
				mode: "vector",
				k: 30,
				filter: { bucket: { in: [3, 4] }, even: true }
			});
			expect(r.results).toHaveLength(20); // buckets 3 and 4 hold 40 documents, 20 of them even
			expect(r.results.every((h: any) => h.metadata.bucket === 4 && h.metadata.even)).toBe(true);
		});

		test("another organization's collection does not exist for a caller", async () => {
			await rejects(call("embeddings.search", { id: c.id, query: "alpha" }, other), 404);
			await rejects(
				call("embeddings.upsert", { id: c.id, documents: [{ sourceId: "x", text: "y" }] }, other),
				404
			);
			await rejects(call("embeddings-collections.get", { id: c.id }, other), 404);
			await rejects(call("embeddings-documents.list", { collectionId: c.id }, other), 404);
			await rejects(call("embeddings.remove", { collectionId: c.id, sourceIds: ["d1"] }, other), 404);
			const some = await call("embeddings.search", { id: c.id, query: "alpha", k: 1 });
			await rejects(call("embeddings-documents.get", { id: some.results[0].documentId }, other), 404);
			expect((await call("embeddings-collections.list", {}, other)).rows.map((x: any) => x.name)).toEqual(["kb"]);
		});

		test("bad input is refused naming the field", async () => {
			await rejects(call("embeddings.search", { id: c.id, query: "a", k: 0 }), 422, "k");
			await rejects(call("embeddings.search", { id: c.id, query: "a", mode: "magic" }), 422, "mode");
			await rejects(
				call("embeddings.search", { id: c.id, query: "a", filter: { bucket: { gt: 1 } } }),
				422,
				"filter.bucket"
			);
			await rejects(call("embeddings.search", { id: c.id, query: "a", filter: { "a'b": 1 } }), 422, "filter.a'b");
			await rejects(call("embeddings.search", { id: c.id, query: "" }), 422, "query");
			await rejects(
				call("embeddings.upsert", { id: c.id, documents: [{ sourceId: "x" }] }),
				422,
				"documents[0].text"
			);
			const twice = [
				{ sourceId: "x", text: "one" },
				{ sourceId: "x", text: "two" }
			];
			await rejects(call("embeddings.upsert", { id: c.id, documents: twice }), 422, "documents");
			await rejects(
				call("embeddings.upsert", {
					id: c.id,
					documents: [{ sourceId: "x", text: "y", metadata: { a: { b: 1 } } }]
				}),
				422
			);
			await rejects(
				call("embeddings.upsert", { id: c.id, documents: [{ sourceId: "x", text: "y" }] }, viewer),
				403
			);
			await rejects(call("embeddings-collections.create", { name: "search" }), 409, "name");
		});
	});
});
