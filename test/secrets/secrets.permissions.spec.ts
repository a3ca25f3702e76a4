// Over real HTTP and PostgreSQL: the permission a secrets action declares is the one enforced, and the one OpenAPI
// and GET /api/auth/me show. Writing needs secrets:write (members and above) and then a write grant covering the
// secret unless the caller holds secrets:manage; a viewer is refused by the declared permission even with a grant.
import crypto from "crypto";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { startGateway, http, register, TestGateway, Member } from "../helpers/gateway";
import { waitUntil } from "../helpers/wait";

jest.setTimeout(60_000);

describeWith(["postgres"])("secrets permissions over REST (in-process gateway, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	let owner: Member, member: Member, viewer: Member, org: string;
	const req = (who: Member, method: string, path: string, body?: unknown) =>
		http(gw.port, method, `/api${path}`, { token: who.accessToken, org, body });

	beforeAll(async () => {
		db = await createTestDatabase();
		const env = {
			DATABASE_URL: db.url,
			NODE_ID: "secrets-perm-gw",
			MASTER_KEY: crypto.randomBytes(32).toString("base64")
		};
		gw = await startGateway(env, ["services/secrets/secrets.service.ts"]);
		owner = await register(gw.port, "owner@example.com");
		member = await register(gw.port, "member@example.com");
		viewer = await register(gw.port, "viewer@example.com");
		org = owner.organization.id;
		for (const [email, role] of [
			["member@example.com", "member"],
			["viewer@example.com", "viewer"]
		]) {
			const added = await req(owner, "POST", `/auth/organizations/${org}/members`, { email, role });
			expect(added.status).toBe(200);
		}
		// Aliases of the services register shortly after start.
		await waitUntil(
			"secrets routes",
			() => req(owner, "GET", "/secrets"),
			r => r.status === 200
		);
	});

	afterAll(async () => {
		await gw?.stop();
		await db?.drop();
	});

	test("create, update and rollback: viewers refused by secrets:write, members by the grant, as declared", async () => {
		const created = await req(owner, "POST", "/secrets", { environment: "staging", name: "DB_MAIN", value: "v1" });
		expect(created.status).toBe(200);
		const id = created.body.id;
		expect((await req(owner, "PATCH", `/secrets/${id}`, { value: "v2" })).status).toBe(200);

		// A write grant on DB_* in staging to both, so only the declared permission tells them apart.
		for (const who of [member, viewer]) {
			const grant = {
				environment: "staging",
				namePrefix: "DB_",
				permission: "write",
				granteeType: "user",
				granteeId: who.user.id
			};
			expect((await req(owner, "POST", "/secrets/grants", grant)).status).toBe(200);
		}
		const attempts: [string, string, object][] = [
			["POST", "/secrets", { environment: "staging", name: "DB_REPLICA", value: "r1" }],
			["PATCH", `/secrets/${id}`, { value: "v3" }],
			["POST", `/secrets/${id}/rollback`, { version: 1 }]
		];
		for (const [method, path, body] of attempts) {
			const refused = await req(viewer, method, path, body);
			expect([method, path, refused.status, refused.body.error?.message]).toEqual([
				method,
				path,
				403,
				"requires permission secrets:write"
			]);
			expect([method, path, (await req(member, method, path, body)).status]).toEqual([method, path, 200]);
		}

		// Outside the grant a member holds secrets:write but no row rule lets them write; an admin-level caller would.
		const outside = await req(member, "POST", "/secrets", {
			environment: "staging",
			name: "API_TOKEN",
			value: "x"
		});
		expect(outside.status).toBe(403);
		expect(outside.body.error.message).toMatch(/no write grant on staging\/API_TOKEN/);
		expect(
			(await req(owner, "POST", "/secrets", { environment: "staging", name: "API_TOKEN", value: "x" })).status
		).toBe(200);
	});

	test("GET /secrets/access tells each caller what it may do: everything, or its own grants only", async () => {
		const mine = await req(owner, "GET", "/secrets/access");
		expect(mine.status).toBe(200);
		expect(mine.body).toMatchObject({ all: true, grants: [] });
		expect(mine.body.permissions).toContain("secrets:manage");

		const other = await register(gw.port, "stranger@example.com");
		const m = await req(member, "GET", "/secrets/access");
		expect(m.status).toBe(200);
		expect(m.body.all).toBe(false);
		expect(m.body.permissions).toEqual(expect.arrayContaining(["secrets:read", "secrets:write"]));
		expect(m.body.permissions).not.toContain("secrets:manage");
		// The write grant on DB_* in staging from the test above, and nobody else's.
		expect(m.body.grants).toEqual([
			expect.objectContaining({ environment: "staging", namePrefix: "DB_", permission: "write", exact: false })
		]);
		const v = await req(viewer, "GET", "/secrets/access");
		expect(v.body.permissions).not.toContain("secrets:write");
		// Another organization's caller sees its own organization only (none of these grants).
		const o = await http(gw.port, "GET", "/api/secrets/access", {
			token: other.accessToken,
			org: other.organization.id
		});
		expect(o.body).toMatchObject({ all: true, grants: [] });
	});

	test("OpenAPI and /api/auth/me show the permissions that are enforced", async () => {
		const doc = (await http(gw.port, "GET", "/api/openapi.json")).body;
		const op = (method: string, path: string) => doc.paths[path]?.[method];
		expect(op("post", "/api/secrets")["x-permission"]).toBe("secrets:write");
		expect(op("patch", "/api/secrets/{id}")["x-permission"]).toBe("secrets:write");
		expect(op("post", "/api/secrets/{id}/rollback")["x-permission"]).toBe("secrets:write");
		expect(op("post", "/api/secrets/{id}/reveal")["x-permission"]).toBe("secrets:reveal");
		expect(op("get", "/api/secrets")["x-permission"]).toBe("secrets:read");
		expect(op("post", "/api/secrets").description).toBe(
			"Requires permission `secrets:write` (Create, update and roll back the secrets a write grant covers); " +
				"held by default by owner, admin, member."
		);

		const me = async (who: Member) => (await req(who, "GET", "/auth/me")).body.permissions as string[];
		expect(await me(member)).toEqual(expect.arrayContaining(["secrets:read", "secrets:reveal", "secrets:write"]));
		expect(await me(member)).not.toContain("secrets:manage");
		expect(await me(viewer)).not.toContain("secrets:write");
		expect(await me(owner)).toEqual(expect.arrayContaining(["secrets:manage", "secrets:own", "ai:manage"]));
		// The organizations list carries each membership's permissions for the UI.
		const mine = (await req(viewer, "GET", "/auth/organizations")).body.find((o: any) => o.id === org);
		expect(mine).toMatchObject({ role: "viewer" });
		expect(mine.permissions).toContain("secrets:reveal");
		expect(mine.permissions).not.toContain("secrets:write");
	});
});
