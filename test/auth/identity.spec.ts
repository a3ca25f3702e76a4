// Identity against real PostgreSQL: sessions, organizations, teams, API keys, and tenant isolation.
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import type { ServiceBroker } from "moleculer";
import { getDb } from "../../lib/db";
import { digest } from "../../services/auth/credentials";

const AUTH_FILES = [
	"services/auth/auth.service.ts",
	"services/auth/organizations.service.ts",
	"services/auth/teams.service.ts",
	"services/auth/api-keys.service.ts"
];

describeWith(["postgres"])("auth module (PostgreSQL)", () => {
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	let drop: () => Promise<void>;

	const register = (email: string) =>
		broker.call<any, any>("auth.register", { email, password: "correct horse battery", name: email.split("@")[0] });
	const resolve = (token: string, organizationId?: string) =>
		broker.call<any, any>("auth.resolve", { token, organizationId });

	beforeAll(async () => {
		const db = await createTestDatabase();
		drop = db.drop;
		const t = await createTestBroker({ DATABASE_URL: db.url }, AUTH_FILES);
		broker = t.broker;
		stop = t.stop;
	});
	afterAll(async () => {
		await stop?.();
		await drop?.();
	});

	test("register creates the user, a personal organization with the user as owner, and a session", async () => {
		const r = await register("ada@example.com");
		expect(r.user.email).toBe("ada@example.com");
		expect(r.organization.role).toBe("owner");
		expect(r.accessToken.split(".")).toHaveLength(3);
		expect(r.refreshToken).toMatch(/^rt_/);
		const auth = await resolve(r.accessToken, r.organization.id);
		expect(auth).toMatchObject({ userId: r.user.id, organizationId: r.organization.id, role: "owner" });
		const me = await broker.call<any, any>("auth.me", {}, as(auth));
		expect(me.organizations.map((o: any) => o.id)).toEqual([r.organization.id]);
	});

	test("a second registration with the same email (any case) is a 409", async () => {
		await expect(register("ADA@example.com")).rejects.toMatchObject({ code: 409 });
	});

	test("malformed input gets a 422 that names the field", async () => {
		await expect(
			broker.call("auth.register", { email: "not-an-email", password: "correct horse battery", name: "x" })
		).rejects.toMatchObject({
			code: 422,
			data: [expect.objectContaining({ field: "email" })]
		});
		await expect(
			broker.call("auth.register", { email: "b@example.com", password: "short", name: "x" })
		).rejects.toMatchObject({
			code: 422,
			data: [expect.objectContaining({ field: "password" })]
		});
		await expect(
			broker.call("auth.register", {
				email: "b@example.com",
				password: "correct horse battery",
				name: "x",
				admin: true
			})
		).rejects.toMatchObject({
			code: 422,
			data: [expect.objectContaining({ field: "admin" })]
		});
	});

	test("wrong password and unknown user get the same 401", async () => {
		const wrong: any = await broker
			.call("auth.login", { email: "ada@example.com", password: "wrong password!!" })
			.catch(e => e);
		const unknown: any = await broker
			.call("auth.login", { email: "nobody@example.com", password: "wrong password!!" })
			.catch(e => e);
		expect(wrong.code).toBe(401);
		expect(unknown.code).toBe(401);
		expect(wrong.message).toBe(unknown.message);
		expect(wrong.type).toBe(unknown.type);
	});

	test("refresh rotates; reusing a used refresh token revokes the whole session", async () => {
		const login = await broker.call<any, any>("auth.login", {
			email: "ada@example.com",
			password: "correct horse battery"
		});
		const second = await broker.call<any, any>("auth.refresh", { refreshToken: login.refreshToken });
		expect(second.refreshToken).not.toBe(login.refreshToken);
		const third = await broker.call<any, any>("auth.refresh", { refreshToken: second.refreshToken });
		// Replaying the first token: refused, and every token of the family dies with it.
		await expect(broker.call("auth.refresh", { refreshToken: login.refreshToken })).rejects.toMatchObject({
			code: 401
		});
		await expect(broker.call("auth.refresh", { refreshToken: third.refreshToken })).rejects.toMatchObject({
			code: 401
		});
		await expect(resolve(third.accessToken)).rejects.toMatchObject({ code: 401 });
	});

	test("sessions that can no longer be refreshed are pruned; live ones (and their used tokens) stay", async () => {
		const db = await getDb();
		const ended = await broker.call<any, any>("auth.login", {
			email: "ada@example.com",
			password: "correct horse battery"
		});
		const live = await broker.call<any, any>("auth.login", {
			email: "ada@example.com",
			password: "correct horse battery"
		});
		await broker.call("auth.refresh", { refreshToken: live.refreshToken }); // the live session now holds a used token too
		const family = async (refreshToken: string) =>
			(await db.query("SELECT family_id FROM refresh_tokens WHERE token_hash = $1", [digest(refreshToken)]))
				.rows[0]?.family_id;
		const [endedFamily, liveFamily] = [await family(ended.refreshToken), await family(live.refreshToken)];
		expect(endedFamily && liveFamily).toBeTruthy();
		await db.query("UPDATE refresh_tokens SET expires_at = now() - interval '2 days' WHERE family_id = $1", [
			endedFamily
		]);
		await (broker.getLocalService("auth") as any).pruneSessions();
		const count = async (f: string) =>
			(await db.query("SELECT count(*)::int AS n FROM refresh_tokens WHERE family_id = $1", [f])).rows[0].n;
		expect(await count(endedFamily)).toBe(0);
		expect(await count(liveFamily)).toBe(2);
	});

	test("logout ends the session: its access and refresh tokens stop working", async () => {
		const login = await broker.call<any, any>("auth.login", {
			email: "ada@example.com",
			password: "correct horse battery"
		});
		const auth = await resolve(login.accessToken, login.defaultOrganizationId);
		await broker.call("auth.logout", {}, as(auth));
		await expect(resolve(login.accessToken)).rejects.toMatchObject({ code: 401 });
		await expect(broker.call("auth.refresh", { refreshToken: login.refreshToken })).rejects.toMatchObject({
			code: 401
		});
	});

	test("a forged or tampered token is refused", async () => {
		const r = await register("eve@example.com");
		const [h, p] = r.accessToken.split(".");
		const claims = JSON.parse(Buffer.from(p, "base64url").toString());
		const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: "00000000-0000-0000-0000-000000000000" })).toString("base64url")}.${r.accessToken.split(".")[2]}`;
		await expect(resolve(forged)).rejects.toMatchObject({ code: 401 });
		await expect(resolve("garbage")).rejects.toMatchObject({ code: 401 });
	});

	describe("organizations, roles and tenant isolation", () => {
		let ownerA: any, authA: any, ownerB: any, authB: any, teamB: any, keyB: any;

		beforeAll(async () => {
			ownerA = await register("owner-a@example.com");
			authA = await resolve(ownerA.accessToken, ownerA.organization.id);
			ownerB = await register("owner-b@example.com");
			authB = await resolve(ownerB.accessToken, ownerB.organization.id);
			teamB = await broker.call("auth-teams.create", { name: "Platform", description: "B's team" }, as(authB));
			keyB = await broker.call("auth-api-keys.create", { name: "ci" }, as(authB));
		});

		test("a user cannot act in an organization they do not belong to", async () => {
			await expect(resolve(ownerA.accessToken, ownerB.organization.id)).rejects.toMatchObject({ code: 403 });
		});

		test("a member of org A gets 404 for every org-B id it tries", async () => {
			const attempts: [string, any][] = [
				["auth-teams.get", { id: teamB.id }],
				["auth-teams.update", { id: teamB.id, name: "pwned" }],
				["auth-teams.remove", { id: teamB.id }],
				["auth-teams.members", { id: teamB.id }],
				["auth-teams.addMember", { id: teamB.id, userId: ownerA.user.id }],
				["auth-api-keys.revoke", { id: keyB.id }],
				["auth-organizations.get", { id: ownerB.organization.id }],
				["auth-organizations.update", { id: ownerB.organization.id, name: "pwned" }],
				["auth-organizations.members", { id: ownerB.organization.id }],
				["auth-organizations.addMember", { id: ownerB.organization.id, email: "owner-a@example.com" }],
				["auth-organizations.removeMember", { id: ownerB.organization.id, userId: ownerB.user.id }]
			];
			for (const [action, params] of attempts) {
				const err: any = await broker.call(action, params, as(authA)).catch(e => e);
				expect([action, err.code]).toEqual([action, 404]);
			}
			const listA: any = await broker.call("auth-teams.list", {}, as(authA));
			expect(listA.rows).toEqual([]);
			const found: any = await broker.call(
				"auth-teams.find",
				{ query: { organization_id: ownerB.organization.id } },
				as(authA)
			);
			expect(found).toEqual([]);
			// B's team is untouched.
			expect(await broker.call("auth-teams.get", { id: teamB.id }, as(authB))).toMatchObject({
				name: "Platform"
			});
		});

		test("a client cannot move a row to another organization", async () => {
			await expect(
				broker.call("auth-teams.create", { name: "x", organization_id: ownerB.organization.id }, as(authA))
			).rejects.toMatchObject({ code: 422 });
			await expect(
				broker.call("auth-teams.update", { id: teamB.id, organization_id: ownerA.organization.id }, as(authB))
			).rejects.toMatchObject({ code: 422 });
		});

		test("roles: a viewer reads but cannot write; an admin cannot make owners", async () => {
			const viewer = await register("viewer@example.com");
			const admin = await register("admin@example.com");
			await broker.call(
				"auth-organizations.addMember",
				{ id: ownerB.organization.id, email: "viewer@example.com", role: "viewer" },
				as(authB)
			);
			await broker.call(
				"auth-organizations.addMember",
				{ id: ownerB.organization.id, email: "admin@example.com", role: "admin" },
				as(authB)
			);
			const authViewer = await resolve(viewer.accessToken, ownerB.organization.id);
			const authAdmin = await resolve(admin.accessToken, ownerB.organization.id);
			expect(authViewer.role).toBe("viewer");

			expect(await broker.call("auth-teams.get", { id: teamB.id }, as(authViewer))).toMatchObject({
				id: teamB.id
			});
			await expect(broker.call("auth-teams.create", { name: "nope" }, as(authViewer))).rejects.toMatchObject({
				code: 403
			});
			await expect(broker.call("auth-api-keys.create", { name: "nope" }, as(authViewer))).rejects.toMatchObject({
				code: 403
			});
			await expect(
				broker.call("auth-organizations.update", { id: ownerB.organization.id, name: "x" }, as(authViewer))
			).rejects.toMatchObject({ code: 403 });

			await expect(
				broker.call(
					"auth-organizations.updateMember",
					{ id: ownerB.organization.id, userId: viewer.user.id, role: "owner" },
					as(authAdmin)
				)
			).rejects.toMatchObject({ code: 403 });
			expect(
				await broker.call(
					"auth-organizations.updateMember",
					{ id: ownerB.organization.id, userId: viewer.user.id, role: "member" },
					as(authAdmin)
				)
			).toMatchObject({ role: "member" });
			// The last owner cannot be demoted or removed.
			await expect(
				broker.call(
					"auth-organizations.updateMember",
					{ id: ownerB.organization.id, userId: ownerB.user.id, role: "admin" },
					as(authB)
				)
			).rejects.toMatchObject({ code: 409 });
		});

		test("teams: CRUD, members must belong to the organization", async () => {
			const member = await register("member@example.com");
			await broker.call(
				"auth-organizations.addMember",
				{ id: ownerB.organization.id, email: "member@example.com" },
				as(authB)
			);
			await broker.call(
				"auth-teams.addMember",
				{ id: teamB.id, userId: member.user.id, role: "lead" },
				as(authB)
			);
			await expect(
				broker.call("auth-teams.addMember", { id: teamB.id, userId: ownerA.user.id }, as(authB))
			).rejects.toMatchObject({ code: 404 });
			const members: any = await broker.call("auth-teams.members", { id: teamB.id }, as(authB));
			expect(members).toEqual([expect.objectContaining({ userId: member.user.id, role: "lead" })]);
			const updated: any = await broker.call(
				"auth-teams.update",
				{ id: teamB.id, description: "renamed" },
				as(authB)
			);
			expect(updated.description).toBe("renamed");
			await expect(broker.call("auth-teams.create", { name: "Platform" }, as(authB))).rejects.toMatchObject({
				code: 409
			});
		});

		test("API keys: shown once, stored hashed, resolve to the owner's role, revocable", async () => {
			const created: any = await broker.call(
				"auth-api-keys.create",
				{ name: "laptop", role: "viewer" },
				as(authA)
			);
			expect(created.key).toMatch(/^cide_/);
			const listed: any[] = await broker.call("auth-api-keys.list", {}, as(authA));
			expect(listed.find(k => k.id === created.id)).toBeDefined();
			expect(JSON.stringify(listed)).not.toContain(created.key);
			const viaKey = await broker.call<any, any>("auth.resolve", { apiKey: created.key });
			expect(viaKey).toMatchObject({
				userId: ownerA.user.id,
				organizationId: ownerA.organization.id,
				role: "viewer",
				apiKeyId: created.id
			});
			await broker.call("auth-api-keys.revoke", { id: created.id }, as(authA));
			await expect(broker.call("auth.resolve", { apiKey: created.key })).rejects.toMatchObject({ code: 401 });
		});

		test("an API key's binding holds for every action, whatever organization a call names", async () => {
			const created: any = await broker.call("auth-api-keys.create", { name: "bound" }, as(authA));
			const viaKey = await broker.call<any, any>("auth.resolve", { apiKey: created.key });
			expect(viaKey).toMatchObject({
				kind: "apiKey",
				boundOrganizationId: ownerA.organization.id,
				role: "owner"
			});
			expect(authA).toMatchObject({ kind: "session" });
			expect(authA.boundOrganizationId).toBeUndefined();
			// A call made for the key that names another organization (a service passing meta along, say) is refused.
			const elsewhere = { ...viaKey, organizationId: ownerB.organization.id };
			for (const action of ["auth-teams.list", "auth-api-keys.list", "auth.me", "auth-organizations.list"])
				await expect(broker.call(action, {}, as(elsewhere))).rejects.toMatchObject({ code: 403 });
			await expect(
				broker.call("auth-organizations.create", { name: "From a key" }, as(viaKey))
			).rejects.toMatchObject({ code: 403 });
			expect(await broker.call("auth-organizations.create", { name: "From a session" }, as(authA))).toMatchObject(
				{
					role: "owner"
				}
			);
			expect(((await broker.call("auth-teams.list", {}, as(viaKey))) as any).rows).toEqual([]);
		});

		test("a cached answer is never served to a caller the action refuses", async () => {
			expect(await broker.call("auth-teams.get", { id: teamB.id }, as(authB))).toMatchObject({ id: teamB.id });
			// Same organization and id (same cache key), but no role in it: refused, not served from the cache.
			const roleless = { userId: ownerA.user.id, organizationId: ownerB.organization.id, permissions: [] };
			await expect(broker.call("auth-teams.get", { id: teamB.id }, as(roleless as any))).rejects.toMatchObject({
				code: 403
			});
			await expect(broker.call("auth-teams.get", { id: teamB.id })).rejects.toMatchObject({ code: 401 });
		});

		test("protected actions refuse a caller without credentials", async () => {
			await expect(broker.call("auth-teams.list", {})).rejects.toMatchObject({ code: 401 });
			await expect(broker.call("auth.me", {})).rejects.toMatchObject({ code: 401 });
		});
	});
});
