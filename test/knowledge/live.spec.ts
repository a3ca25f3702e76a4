// Live refresh of knowledge pages through a real gateway: every write to an article or a category reaches the
// organization's open sockets as a notice naming only its kind and id (no title, no label, no actor), so a member
// who cannot read the article's category learns nothing from it but an id, and reading that id answers 404.
import type { Socket } from "socket.io-client";
import { describeWith, createTestDatabase, uniqueNamespace, REDIS_URL } from "../helpers/infra";
import { startGateway, http, register, connect, TestGateway, Member } from "../helpers/gateway";
import { waitUntil } from "../helpers/wait";

const FILES = ["knowledge/knowledge", "knowledge/categories", "knowledge/articles"].map(
	s => `services/${s}.service.ts`
);

describeWith(["postgres", "redis"])("knowledge live notices", () => {
	const namespace = uniqueNamespace("kblive");
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	const sockets: Socket[] = [];
	let ana: Member, ben: Member;
	const seen = new Map<Socket, any[]>();

	const listen = async (m: Member, org: string) => {
		const s = await connect(gw.port, { token: m.accessToken, organizationId: org });
		sockets.push(s);
		seen.set(s, []);
		s.on("changed", n => seen.get(s)!.push(n));
		return s;
	};
	const as = (m: Member, method: string, path: string, body?: unknown) =>
		http(gw.port, method, path, { token: m.accessToken, org: ana.organization.id, body });

	beforeAll(async () => {
		db = await createTestDatabase();
		gw = await startGateway({ DATABASE_URL: db.url, CACHER: REDIS_URL, REDIS_URL, NAMESPACE: namespace }, FILES);
		ana = await register(gw.port, "ana@kblive.test");
		ben = await register(gw.port, "ben@kblive.test");
		const org = ana.organization.id;
		const added = await as(ana, "POST", `/api/auth/organizations/${org}/members`, {
			email: "ben@kblive.test",
			role: "member"
		});
		expect(added.status).toBe(200);
	}, 60_000);

	afterAll(async () => {
		for (const s of sockets) s.close();
		await gw?.stop();
		await db?.drop();
	});

	test("a member who cannot read the category learns only ids; the author's pages hear every change", async () => {
		const anaSocket = await listen(ana, ana.organization.id);
		const benSocket = await listen(ben, ana.organization.id);
		const secret = "Board salaries 2027";
		const body = "The chair earns a confidential amount.";
		const category = await as(ana, "POST", "/api/knowledge/categories", { name: "Restricted board papers" });
		expect(category.status).toBe(200);
		const grants = await as(ana, "PUT", `/api/knowledge/categories/${category.body.id}/grants`, {
			grants: [{ role: "owner", access: "write" }]
		});
		expect(grants.status).toBe(200);
		const created = await as(ana, "POST", "/api/knowledge/articles", {
			category_id: category.body.id,
			title: secret,
			body,
			slug: "board-salaries"
		});
		expect(created.status).toBe(200);
		const id = created.body.id;
		// What a page does with a notice: read the id through the API, with the member's own permissions.
		const read = await as(ben, "GET", `/api/knowledge/articles/${id}`);
		expect(read.status).toBe(404);
		expect(read.text).not.toContain("salaries");
		for (const [method, path, payload] of [
			["PATCH", `/api/knowledge/articles/${id}`, { body: `${body} Revised.` }],
			["POST", `/api/knowledge/articles/${id}/publish`, {}],
			["POST", `/api/knowledge/articles/${id}/unpublish`, {}],
			["POST", `/api/knowledge/articles/${id}/restore`, { revision: 1 }],
			["DELETE", `/api/knowledge/articles/${id}`, undefined]
		] as const)
			expect((await as(ana, method, path, payload)).status).toBe(200);

		// Six article notices (create, update, publish, unpublish, restore, remove) and two category ones reach both.
		const articleNotices = (s: Socket) => seen.get(s)!.filter(n => n.entity === "knowledge-articles");
		for (const s of [anaSocket, benSocket])
			await waitUntil(
				"every notice delivered",
				async () => articleNotices(s).map(n => n.action),
				actions => actions.includes("removed") && actions.length === 6
			);
		await waitUntil(
			"category notices delivered",
			async () => seen.get(benSocket)!.filter(n => n.entity === "knowledge-categories").length,
			n => n === 2
		);
		for (const s of [anaSocket, benSocket]) {
			expect(articleNotices(s).map(n => n.action)).toEqual([
				"created",
				"updated",
				"updated",
				"updated",
				"updated",
				"removed"
			]);
			// Kind, id and what happened: nothing that says what the article or the category is, nor who wrote it.
			for (const n of seen.get(s)!) {
				expect(Object.keys(n).sort()).toEqual(["action", "entity", "id", "noun"]);
				const text = JSON.stringify(n);
				for (const word of ["Board", "salaries", "board-salaries", "confidential", "Restricted", "ana"])
					expect(text).not.toContain(word);
			}
		}
	});
});
