// knowledge: categories, articles with revisions (diff, restore), links, validation, tenancy, publishing through
// the indexer into search. Permissions per role and the error shape are checked for every module by
// test/platform/conformance.spec.ts; per-category grants in search-permissions.spec.ts.
import { knowledgeWorld } from "./setup";
import { describeWith, DATABASE_ENGINE, DATABASE_SERVICES } from "../helpers/infra";
import type { AuthInfo } from "../../lib/permissions";

describeWith(DATABASE_SERVICES)(`knowledge (in-process broker, ${DATABASE_ENGINE})`, () => {
	let w: Awaited<ReturnType<typeof knowledgeWorld>>;
	let org: string, owner: AuthInfo, member: AuthInfo, viewer: AuthInfo, stranger: AuthInfo;

	beforeAll(async () => {
		w = await knowledgeWorld();
		org = await w.organization("acme");
		owner = await w.principal(org, "owner");
		member = await w.principal(org, "member");
		viewer = await w.principal(org, "viewer");
		stranger = await w.principal(await w.organization("other"), "owner");
	});
	afterAll(() => w?.stop());

	test("categories nest; names are unique among siblings; a category cannot move below itself", async () => {
		const root = await w.call("knowledge-categories.create", { name: "Engineering" }, member);
		const child = await w.call("knowledge-categories.create", { name: "Backend", parent_id: root.id }, member);
		expect(child).toMatchObject({ parent_id: root.id, restricted: false, can_write: true, article_count: 0 });
		await expect(
			w.call("knowledge-categories.create", { name: "Backend", parent_id: root.id }, member)
		).rejects.toMatchObject({ code: 409, data: [{ field: "name" }] });
		// The same name elsewhere is fine.
		await w.call("knowledge-categories.create", { name: "Backend" }, member);
		await expect(
			w.call("knowledge-categories.update", { id: root.id, parent_id: child.id }, member)
		).rejects.toMatchObject({ code: 422, data: [{ field: "parent_id" }] });
		await expect(w.call("knowledge-categories.create", { name: "" }, member)).rejects.toMatchObject({ code: 422 });
		await expect(w.call("knowledge-categories.create", { name: "X" }, viewer)).rejects.toMatchObject({ code: 403 });
		// Grants name a team of the organization or a role, never both.
		const elsewhere = await w.team(await w.organization("elsewhere"), "theirs");
		await expect(
			w.call(
				"knowledge-categories.setGrants",
				{ id: root.id, grants: [{ team_id: elsewhere, access: "read" }] },
				owner
			)
		).rejects.toMatchObject({ code: 422, data: [{ field: "team_id" }] });
		await expect(
			w.call(
				"knowledge-categories.setGrants",
				{ id: root.id, grants: [{ role: "member", team_id: elsewhere, access: "read" }] },
				owner
			)
		).rejects.toMatchObject({ code: 422, data: [{ field: "grants[0]" }] });
		await expect(
			w.call(
				"knowledge-categories.setGrants",
				{ id: root.id, grants: [{ role: "member", access: "read" }] },
				member
			)
		).rejects.toMatchObject({ code: 403 });
		expect(await w.call("knowledge-categories.grants", { id: root.id }, viewer)).toEqual([]);
		const names = (await w.call<any[]>("knowledge-categories.list", {}, viewer)).map(c => c.name);
		expect(names).toEqual(expect.arrayContaining(["Engineering", "Backend", "Backend"]));
	});

	test("articles: create, every save a revision, diff, restore, links, tenancy", async () => {
		const cat = await w.call("knowledge-categories.create", { name: "Guides" }, owner);
		const a = await w.call(
			"knowledge-articles.create",
			{
				category_id: cat.id,
				title: "Deploying the API",
				body: "Run make deploy.\nThen check health.",
				tags: ["ops"]
			},
			member
		);
		expect(a).toMatchObject({ slug: "deploying-the-api", status: "draft", revision: 1, tags: ["ops"] });
		const b = await w.call(
			"knowledge-articles.create",
			{ category_id: cat.id, title: "Deploying the API", body: "See [[deploying-the-api]]." },
			member
		);
		expect(b.slug).toBe("deploying-the-api-2");

		const edited = await w.call(
			"knowledge-articles.update",
			{ id: a.id, body: "Run make deploy.\nThen check /health and the logs.", tags: ["ops", "api"] },
			member
		);
		expect(edited.revision).toBe(2);
		// Saving the same content again writes no revision.
		expect((await w.call("knowledge-articles.update", { id: a.id, tags: ["ops", "api"] }, member)).revision).toBe(
			2
		);

		const diff = await w.call("knowledge-articles.diff", { id: a.id, from: 1, to: 2 }, viewer);
		expect(diff).toMatchObject({ from: 1, to: 2, changed: true, tags: { added: ["api"], removed: [] } });
		expect(diff.body).toEqual([
			{ op: "equal", text: "Run make deploy.\n" },
			{ op: "removed", text: "Then check health." },
			{ op: "added", text: "Then check /health and the logs." }
		]);
		await expect(w.call("knowledge-articles.diff", { id: a.id, from: 1, to: 9 }, viewer)).rejects.toMatchObject({
			code: 422,
			data: [{ field: "to" }]
		});

		const restored = await w.call("knowledge-articles.restore", { id: a.id, revision: 1 }, member);
		expect(restored).toMatchObject({ revision: 3, body: "Run make deploy.\nThen check health.", tags: ["ops"] });
		const revisions = await w.call<any[]>("knowledge-articles.revisions", { id: a.id }, viewer);
		expect(revisions.map(r => [r.number, r.note])).toEqual([
			[3, "restored revision 1"],
			[2, ""],
			[1, ""]
		]);

		// b links to a by slug; a shows it as a backlink.
		const detail = await w.call("knowledge-articles.get", { id: a.id }, viewer);
		expect(detail.backlinks.map((l: any) => l.id)).toEqual([b.id]);
		expect(detail.can_write).toBe(false);
		expect((await w.call("knowledge-articles.get", { id: b.id }, viewer)).links.map((l: any) => l.id)).toEqual([
			a.id
		]);

		// Validation names the field; another organization sees nothing.
		await expect(
			w.call("knowledge-articles.create", { category_id: cat.id, title: "  " }, member)
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "title" })] });
		await expect(
			w.call("knowledge-articles.create", { category_id: cat.id, title: "T", tags: "ops" }, member)
		).rejects.toMatchObject({ code: 422 });
		await expect(w.call("knowledge-articles.get", { id: a.id }, stranger)).rejects.toMatchObject({ code: 404 });
		await expect(
			w.call("knowledge-articles.create", { category_id: cat.id, title: "Mine" }, stranger)
		).rejects.toMatchObject({ code: 422, data: [{ field: "category_id" }] });
		await expect(w.call("knowledge-articles.update", { id: a.id, title: "X" }, stranger)).rejects.toMatchObject({
			code: 404
		});
		expect((await w.call("knowledge-articles.list", {}, stranger)).rows).toEqual([]);
		expect(await w.call("knowledge-categories.list", {}, stranger)).toEqual([]);
		// A category holding articles is not removed.
		await expect(w.call("knowledge-categories.remove", { id: cat.id }, owner)).rejects.toMatchObject({ code: 409 });
	});

	test("publishing indexes the article for search; edits re-index it; unpublish and delete remove it", async () => {
		const cat = await w.call("knowledge-categories.create", { name: "Runbooks" }, owner);
		const a = await w.call(
			"knowledge-articles.create",
			{ category_id: cat.id, title: "Rotating certificates", body: "Certificates expire after ninety days." },
			member
		);
		await w.call("knowledge-articles.publish", { id: a.id }, member);
		await w.indexed(a.id, 1);
		const found = await w.call("knowledge.search", { query: "certificates expire" }, viewer);
		expect(found.mode).toBe("fulltext");
		expect(found.results).toEqual([
			expect.objectContaining({
				id: a.id,
				title: "Rotating certificates",
				rank: 1,
				snippet: expect.stringContaining("<mark>Certificates</mark> <mark>expire</mark>")
			})
		]);

		await w.call(
			"knowledge-articles.update",
			{ id: a.id, body: "Renew <b>every</b> quarter with certbot if 1 < 2 & <script>x</script>." },
			member
		);
		await w.indexed(a.id, 2);
		const renewed = await w.call("knowledge.search", { query: "certbot" }, viewer);
		// Nothing of the body is markup in the snippet; only the marks are tags.
		expect(renewed.results[0].snippet.replace(/<\/?mark>/g, "")).not.toMatch(/[<>]/);
		expect(renewed.results[0].snippet).toContain("<mark>certbot</mark>");
		expect((await w.call("knowledge.search", { query: "ninety" }, viewer)).results).toEqual([]);
		// Another organization never finds it.
		expect((await w.call("knowledge.search", { query: "certbot" }, stranger)).results).toEqual([]);

		await w.call("knowledge-articles.unpublish", { id: a.id }, member);
		await w.indexed(a.id, null);
		expect((await w.call("knowledge.search", { query: "certbot" }, viewer)).results).toEqual([]);
		await w.call("knowledge-articles.publish", { id: a.id }, member);
		await w.indexed(a.id, 2);
		await w.call("knowledge-articles.remove", { id: a.id }, member);
		await w.indexed(a.id, null);
		const { rows } = await w.sql.query(
			"SELECT payload->>'type' AS type FROM outbox WHERE channel = 'knowledge.events' AND payload->>'articleId' = $1 ORDER BY created_at",
			[a.id]
		);
		expect(rows.map(r => r.type)).toEqual(
			expect.arrayContaining([
				"knowledge.article.created",
				"knowledge.article.updated",
				"knowledge.article.deleted",
				"knowledge.search.indexed"
			])
		);
		await expect(w.call("knowledge.search", { query: "" }, viewer)).rejects.toMatchObject({ code: 422 });
		await expect(w.call("knowledge.search", { query: "x", k: 500 }, viewer)).rejects.toMatchObject({ code: 422 });
	});

	test("an article moved into a restricted category or unpublished is out of search at once", async () => {
		const open = await w.call("knowledge-categories.create", { name: "Open" }, owner);
		const closed = await w.call("knowledge-categories.create", { name: "Closed" }, owner);
		await w.call(
			"knowledge-categories.setGrants",
			{ id: closed.id, grants: [{ role: "admin", access: "write" }] },
			owner
		);
		const a = await w.call(
			"knowledge-articles.create",
			{ category_id: open.id, title: "Salaries", body: "The compensation bands.", status: "published" },
			owner
		);
		await w.indexed(a.id, 1);
		expect((await w.call("knowledge.search", { query: "compensation" }, viewer)).results).toHaveLength(1);
		// Checked right after the move answers, whether or not the indexer has run yet.
		await w.call("knowledge-articles.update", { id: a.id, category_id: closed.id }, owner);
		expect((await w.call("knowledge.search", { query: "compensation" }, viewer)).results).toEqual([]);
		expect((await w.call("knowledge.search", { query: "compensation" }, owner)).results).toHaveLength(1);
		await expect(w.call("knowledge-articles.get", { id: a.id }, viewer)).rejects.toMatchObject({ code: 404 });
		await w.call("knowledge-articles.unpublish", { id: a.id }, owner);
		expect((await w.call("knowledge.search", { query: "compensation" }, owner)).results).toEqual([]);
		// A member may read but not write a category granted to members for reading.
		await w.call(
			"knowledge-categories.setGrants",
			{ id: closed.id, grants: [{ role: "member", access: "read" }] },
			owner
		);
		expect((await w.call("knowledge-articles.get", { id: a.id }, member)).can_write).toBe(false);
		await expect(w.call("knowledge-articles.update", { id: a.id, title: "Mine" }, member)).rejects.toMatchObject({
			code: 403
		});
		await expect(w.call("knowledge-articles.get", { id: a.id }, viewer)).rejects.toMatchObject({ code: 404 });
	});
});
