// GET /api/auth/me is cached (every signed-in page asks): what it shows must still follow every change of the
// user's organizations and memberships at once, whichever change it is. Real PostgreSQL, in-process gateway.
import pg from "pg";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { startGateway, http, register, TestGateway, Member } from "../helpers/gateway";

describeWith(["postgres"])("the cached GET /api/auth/me", () => {
	let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
	let db: pg.Pool;
	let gw: TestGateway;
	let owner: Member, other: Member;

	const me = async (m: Member, org?: string) => {
		const r = await http(gw.port, "GET", "/api/auth/me", { token: m.accessToken, org });
		expect(r.status).toBe(200);
		return r.body;
	};
	const orgsOf = async (m: Member) =>
		(await me(m)).organizations.map((o: any) => `${o.name}:${o.role}`).sort() as string[];

	beforeAll(async () => {
		testDb = await createTestDatabase();
		db = new pg.Pool({ connectionString: testDb.url, max: 2 });
		db.on("error", () => undefined);
		gw = await startGateway({ DATABASE_URL: testDb.url, NODE_ID: "me-cache-gw" });
		owner = await register(gw.port, "owner@example.com");
		other = await register(gw.port, "other@example.com");
	});
	afterAll(async () => {
		await gw?.stop();
		await db?.end();
		await testDb?.drop();
	});

	test("is answered from the cache: a change made behind the service's back does not show", async () => {
		expect(await orgsOf(owner)).toEqual(["owner's workspace:owner"]);
		await db.query("UPDATE organizations SET name = 'renamed in SQL' WHERE id = $1", [owner.organization.id]);
		expect(await orgsOf(owner)).toEqual(["owner's workspace:owner"]);
	});

	test("follows creating, renaming and deleting an organization", async () => {
		const created = await http(gw.port, "POST", "/api/auth/organizations", {
			token: owner.accessToken,
			body: { name: "Acme" }
		});
		expect(created.status).toBe(200);
		const acme = created.body.id;
		// The creation dropped the cached answers, so the rename made in SQL above shows now too.
		expect(await orgsOf(owner)).toEqual(["Acme:owner", "renamed in SQL:owner"]);

		const renamed = await http(gw.port, "PATCH", `/api/auth/organizations/${acme}`, {
			token: owner.accessToken,
			org: acme,
			body: { name: "Acme Labs" }
		});
		expect(renamed.status).toBe(200);
		expect(await orgsOf(owner)).toEqual(["Acme Labs:owner", "renamed in SQL:owner"]);

		const removed = await http(gw.port, "DELETE", `/api/auth/organizations/${acme}`, {
			token: owner.accessToken,
			org: acme
		});
		expect(removed.status).toBe(200);
		expect(await orgsOf(owner)).toEqual(["renamed in SQL:owner"]);
	});

	test("follows a member added, given another role and removed, in the member's own view", async () => {
		const org = (
			await http(gw.port, "POST", "/api/auth/organizations", { token: owner.accessToken, body: { name: "Team" } })
		).body.id;
		const asOwner = { token: owner.accessToken, org };
		expect(await orgsOf(other)).toEqual(["other's workspace:owner"]);

		const added = await http(gw.port, "POST", `/api/auth/organizations/${org}/members`, {
			...asOwner,
			body: { email: "other@example.com", role: "viewer" }
		});
		expect(added.status).toBe(200);
		expect(await orgsOf(other)).toEqual(["Team:viewer", "other's workspace:owner"]);
		// Acting in the organization: the role and its permissions are the member's.
		expect(await me(other, org)).toMatchObject({ organizationId: org, role: "viewer" });

		const path = `/api/auth/organizations/${org}/members/${other.user.id}`;
		expect((await http(gw.port, "PATCH", path, { ...asOwner, body: { role: "admin" } })).status).toBe(200);
		expect(await orgsOf(other)).toEqual(["Team:admin", "other's workspace:owner"]);
		expect(await me(other, org)).toMatchObject({ organizationId: org, role: "admin" });

		expect((await http(gw.port, "DELETE", path, asOwner)).status).toBe(200);
		expect(await orgsOf(other)).toEqual(["other's workspace:owner"]);
		expect((await http(gw.port, "GET", "/api/auth/me", { token: other.accessToken, org })).status).toBe(403);
	});

	test("follows an accepted invitation", async () => {
		const org = (
			await http(gw.port, "POST", "/api/auth/organizations", {
				token: owner.accessToken,
				body: { name: "Guild" }
			})
		).body.id;
		expect(await orgsOf(other)).toEqual(["other's workspace:owner"]);
		const invited = await http(gw.port, "POST", "/api/auth/invitations", {
			token: owner.accessToken,
			org,
			body: { email: "other@example.com", role: "member" }
		});
		expect(invited.status).toBe(200);
		const accepted = await http(gw.port, "POST", "/api/auth/invitations/accept", {
			token: other.accessToken,
			body: { token: invited.body.token }
		});
		expect(accepted.status).toBe(200);
		expect(await orgsOf(other)).toEqual(["Guild:member", "other's workspace:owner"]);
	});

	test("keeps users apart: one user's cached answer is never another's", async () => {
		const [a, b] = [await me(owner), await me(other)];
		expect(a.user.email).toBe("owner@example.com");
		expect(b.user.email).toBe("other@example.com");
		expect(a.organizations.map((o: any) => o.id)).not.toContain(other.organization.id);
	});
});
