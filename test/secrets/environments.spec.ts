// Over real HTTP and PostgreSQL: environments side by side (counts, a comparison that never shows a value) and the
// audit log's filters and CSV export.
import crypto from "crypto";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { startGateway, http, register, TestGateway, Member } from "../helpers/gateway";
import { waitUntil } from "../helpers/wait";

jest.setTimeout(60_000);

describeWith(["postgres"])(
	"secrets across environments and the audit export (in-process gateway, real PostgreSQL)",
	() => {
		let db: Awaited<ReturnType<typeof createTestDatabase>>;
		let gw: TestGateway;
		let owner: Member, member: Member, org: string;
		const req = (who: Member, method: string, path: string, body?: unknown) =>
			http(gw.port, method, `/api${path}`, { token: who.accessToken, org, body });
		const put = (environment: string, name: string, value: string) =>
			req(owner, "POST", "/secrets", { environment, name, value }).then(r => {
				expect(r.status).toBe(200);
				return r.body;
			});

		beforeAll(async () => {
			db = await createTestDatabase();
			const env = {
				DATABASE_URL: db.url,
				NODE_ID: "secrets-env-gw",
				MASTER_KEY: crypto.randomBytes(32).toString("base64")
			};
			gw = await startGateway(env, ["services/secrets/secrets.service.ts"]);
			owner = await register(gw.port, "owner@example.com");
			member = await register(gw.port, "member@example.com");
			org = owner.organization.id;
			await req(owner, "POST", `/auth/organizations/${org}/members`, {
				email: "member@example.com",
				role: "member"
			});
			await waitUntil(
				"secrets routes",
				() => req(owner, "GET", "/secrets"),
				r => r.status === 200
			);
			await put("development", "DB_URL", "postgres://dev");
			await put("production", "DB_URL", "postgres://prod");
			await put("development", "API_TOKEN", "same-token");
			await put("production", "API_TOKEN", "same-token");
			await put("development", "DEBUG", "1");
		});

		afterAll(async () => {
			await gw?.stop();
			await db?.drop();
		});

		test("counts per environment, every configured environment listed", async () => {
			const r = await req(owner, "GET", "/secrets/environments");
			expect(r.status).toBe(200);
			expect(r.body.map((e: any) => [e.environment, e.count])).toEqual([
				["development", 3],
				["staging", 0],
				["production", 2]
			]);
		});

		test("comparing two environments says which names are missing and which values differ, without any value", async () => {
			const r = await req(owner, "GET", "/secrets/compare?from=development&to=production");
			expect(r.status).toBe(200);
			expect(r.body.environments).toEqual(["development", "production"]);
			const byName = Object.fromEntries(r.body.rows.map((row: any) => [row.name, row]));
			expect(byName.DB_URL).toEqual({ name: "DB_URL", versions: { development: 1, production: 1 }, same: false });
			expect(byName.API_TOKEN.same).toBe(true);
			expect(byName.DEBUG).toEqual({ name: "DEBUG", versions: { development: 1, production: null }, same: null });
			expect(r.text).not.toMatch(/postgres:\/\/|same-token/);

			// A member without read grants sees the names but not whether values match.
			const asMember = await req(member, "GET", "/secrets/compare?from=development&to=production");
			expect(asMember.status).toBe(200);
			expect(asMember.body.rows.every((row: any) => row.same === null)).toBe(true);

			const same = await req(owner, "GET", "/secrets/compare?from=development&to=development");
			expect(same.status).toBe(422);
			expect(same.body.error.fields[0].field).toBe("to");
			const unknown = await req(owner, "GET", "/secrets/compare?from=development&to=qa");
			expect(unknown.status).toBe(422);
		});

		test("the audit log filters by action, outcome and text, and exports the same selection as CSV", async () => {
			const creates = await req(owner, "GET", "/secrets/audit?action=create");
			expect(creates.status).toBe(200);
			expect(creates.body).toHaveLength(5);
			expect(new Set(creates.body.map((e: any) => e.action))).toEqual(new Set(["create"]));
			const compares = await req(owner, "GET", "/secrets/audit?action=compare&outcome=success");
			expect(compares.body.length).toBeGreaterThanOrEqual(2);
			const searched = await req(owner, "GET", "/secrets/audit?search=production");
			expect(searched.body.length).toBeGreaterThan(0);
			expect(searched.body.every((e: any) => JSON.stringify(e).includes("production"))).toBe(true);
			const future = await req(
				owner,
				"GET",
				`/secrets/audit?from=${new Date(Date.now() + 60_000).toISOString()}`
			);
			expect(future.body).toEqual([]);

			const csv = await req(owner, "GET", "/secrets/audit/export?action=create");
			expect(csv.status).toBe(200);
			expect(csv.headers.get("content-type")).toMatch(/^text\/csv/);
			expect(csv.headers.get("content-disposition")).toMatch(/attachment; filename=".+\.csv"/);
			const lines = csv.text.trim().split("\r\n");
			expect(lines[0]).toBe("seq,actor_type,actor_id,action,target,outcome,request_id,details,created_at");
			expect(lines).toHaveLength(6);
			expect(lines.slice(1).every(l => l.split(",")[3] === "create")).toBe(true);
			expect(csv.text).not.toMatch(/postgres:\/\/|same-token/);

			const refused = await req(member, "GET", "/secrets/audit/export");
			expect(refused.status).toBe(403);
		});
	}
);
