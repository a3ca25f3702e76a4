// Invitations and password resets over a real gateway and PostgreSQL: what an admin, an invitee without an account
// and a user who forgot their password each see.
import pg from "pg";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { startGateway, http, register, TestGateway, Member } from "../helpers/gateway";

describeWith(["postgres"])("invitations and password resets (in-process gateway, real PostgreSQL)", () => {
	let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
	let db: pg.Pool;
	let gw: TestGateway;
	let owner: Member, other: Member, org: string;
	const asOwner = () => ({ token: owner.accessToken, org });

	beforeAll(async () => {
		testDb = await createTestDatabase();
		db = new pg.Pool({ connectionString: testDb.url, max: 2 });
		db.on("error", () => undefined);
		gw = await startGateway({ DATABASE_URL: testDb.url, NODE_ID: "invitations-gw" });
		owner = await register(gw.port, "owner@example.com");
		other = await register(gw.port, "other@example.com");
		org = owner.organization.id;
	});
	afterAll(async () => {
		await gw?.stop();
		await db?.end();
		await testDb?.drop();
	});

	const invite = (email: string, role = "member", as = asOwner()) =>
		http(gw.port, "POST", "/api/auth/invitations", { ...as, body: { email, role } });

	test("someone without an account signs up from the link and joins with the invited role; the link then stops working", async () => {
		const created = await invite("New.Person@Example.com", "viewer");
		expect(created.status).toBe(200);
		expect(created.body).toMatchObject({ email: "new.person@example.com", role: "viewer", expired: false });
		expect(created.body.path).toBe(`/invitations/${created.body.token}`);
		// Only the digest is stored.
		const stored = await db.query("SELECT token_hash FROM auth_invitations WHERE id = $1", [created.body.id]);
		expect(stored.rows[0].token_hash).not.toContain(created.body.token);

		const listed = await http(gw.port, "GET", "/api/auth/invitations", asOwner());
		expect(listed.body.map((i: any) => i.email)).toEqual(["new.person@example.com"]);
		expect(listed.body[0]).not.toHaveProperty("token");
		expect(listed.body[0].invited_by).toBe("owner");

		const preview = await http(gw.port, "GET", `/api/auth/invitations/preview/${created.body.token}`);
		expect(preview.status).toBe(200);
		expect(preview.body).toMatchObject({
			organization: { id: org },
			email: "new.person@example.com",
			role: "viewer"
		});

		const invitee = await register(gw.port, "new.person@example.com");
		const accepted = await http(gw.port, "POST", "/api/auth/invitations/accept", {
			token: invitee.accessToken,
			body: { token: created.body.token }
		});
		expect(accepted.status).toBe(200);
		expect(accepted.body).toEqual({ organizationId: org, role: "viewer" });
		const members = await http(gw.port, "GET", `/api/auth/organizations/${org}/members`, asOwner());
		expect(members.body.find((m: any) => m.email === "new.person@example.com")?.role).toBe("viewer");
		// The invitee now acts in the organization with the role.
		const asInvitee = await http(gw.port, "GET", `/api/auth/organizations/${org}`, {
			token: invitee.accessToken,
			org
		});
		expect(asInvitee.body.role).toBe("viewer");

		const again = await http(gw.port, "POST", "/api/auth/invitations/accept", {
			token: invitee.accessToken,
			body: { token: created.body.token }
		});
		expect(again.status).toBe(404);
		expect((await http(gw.port, "GET", "/api/auth/invitations", asOwner())).body).toEqual([]);
	});

	test("a link works only for the invited email; another account is refused and does not join", async () => {
		const created = await invite("someone@example.com");
		const r = await http(gw.port, "POST", "/api/auth/invitations/accept", {
			token: other.accessToken,
			body: { token: created.body.token }
		});
		expect(r.status).toBe(403);
		expect(r.body.error.message).toContain("someone@example.com");
		const member = await db.query(
			"SELECT 1 FROM organization_members WHERE organization_id = $1 AND user_id = $2",
			[org, other.user.id]
		);
		expect(member.rowCount).toBe(0);
	});

	test("inviting again replaces the link; a revoked or expired link is refused; members and roles above one's own are refused", async () => {
		const first = await invite("twice@example.com");
		const second = await invite("twice@example.com", "admin");
		expect(second.status).toBe(200);
		const old = await http(gw.port, "GET", `/api/auth/invitations/preview/${first.body.token}`);
		expect(old.status).toBe(404);

		const revoked = await http(gw.port, "DELETE", `/api/auth/invitations/${second.body.id}`, asOwner());
		expect(revoked.status).toBe(200);
		expect((await http(gw.port, "GET", `/api/auth/invitations/preview/${second.body.token}`)).status).toBe(404);

		const late = await invite("late@example.com");
		await db.query("UPDATE auth_invitations SET expires_at = now() - interval '1 second' WHERE id = $1", [
			late.body.id
		]);
		const expired = await http(gw.port, "GET", `/api/auth/invitations/preview/${late.body.token}`);
		expect(expired.status).toBe(410);
		expect(expired.body.error.message).toMatch(/expired/);

		const admin = await register(gw.port, "admin2@example.com");
		const inv = await invite("admin2@example.com", "admin");
		await http(gw.port, "POST", "/api/auth/invitations/accept", {
			token: admin.accessToken,
			body: { token: inv.body.token }
		});
		const already = await invite("admin2@example.com");
		expect(already.status).toBe(409);
		expect(already.body.error.fields[0].field).toBe("email");
		const above = await invite("boss@example.com", "owner", { token: admin.accessToken, org });
		expect(above.status).toBe(403);
		const bad = await invite("not-an-email");
		expect(bad.status).toBe(422);
	});

	test("an invitation of another organization is neither listed nor revocable here", async () => {
		const mine = await invite("mine@example.com");
		const theirs = { token: other.accessToken, org: other.organization.id };
		expect((await http(gw.port, "GET", "/api/auth/invitations", theirs)).body).toEqual([]);
		const r = await http(gw.port, "DELETE", `/api/auth/invitations/${mine.body.id}`, theirs);
		expect(r.status).toBe(404);
		expect((await http(gw.port, "GET", `/api/auth/invitations/preview/${mine.body.token}`)).status).toBe(200);
	});

	test("a reset link sets a new password once, ends every session, and the old password stops working", async () => {
		const user = await register(gw.port, "forgetful@example.com");
		const link: any = await gw.broker.call("auth.resetLink", { email: "forgetful@example.com" });
		expect(link.path).toBe(`/reset-password/${link.token}`);
		const reset = await http(gw.port, "POST", "/api/auth/password/reset", {
			body: { token: link.token, password: "a brand new passphrase" }
		});
		expect(reset.status).toBe(200);
		// The session that existed before is over.
		expect((await http(gw.port, "GET", "/api/auth/me", { token: user.accessToken })).status).toBe(401);
		const login = (password: string) =>
			http(gw.port, "POST", "/api/auth/login", { body: { email: "forgetful@example.com", password } });
		expect((await login("correct horse battery")).status).toBe(401);
		expect((await login("a brand new passphrase")).status).toBe(200);
		const reused = await http(gw.port, "POST", "/api/auth/password/reset", {
			body: { token: link.token, password: "yet another passphrase" }
		});
		expect(reused.status).toBe(404);
		const short = await http(gw.port, "POST", "/api/auth/password/reset", {
			body: { token: link.token, password: "short" }
		});
		expect(short.status).toBe(422);
	});

	test("changing one's password needs the current one and keeps only the current session", async () => {
		const user = await register(gw.port, "changer@example.com");
		const login = await http(gw.port, "POST", "/api/auth/login", {
			body: { email: "changer@example.com", password: "correct horse battery" }
		});
		const wrong = await http(gw.port, "POST", "/api/auth/password", {
			token: user.accessToken,
			body: { currentPassword: "nope", newPassword: "a brand new passphrase" }
		});
		expect(wrong.status).toBe(422);
		expect(wrong.body.error.fields[0].field).toBe("currentPassword");
		const ok = await http(gw.port, "POST", "/api/auth/password", {
			token: user.accessToken,
			body: { currentPassword: "correct horse battery", newPassword: "a brand new passphrase" }
		});
		expect(ok.status).toBe(200);
		expect((await http(gw.port, "GET", "/api/auth/me", { token: user.accessToken })).status).toBe(200);
		expect((await http(gw.port, "GET", "/api/auth/me", { token: login.body.accessToken })).status).toBe(401);
	});
});
