// The moleculer-db adapter and DbMixin behave the same on PostgreSQL and on embedded PGlite: same SQL, same results.
import fs from "fs";
import os from "os";
import path from "path";
import { createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { getDb } from "../../lib/db";
import type { ServiceBroker } from "moleculer";

const FILES = ["services/auth/auth.service.ts", "services/auth/teams.service.ts"];
const infra = (process.env.INFRA_AVAILABLE ?? "").split(",");
const engines: [string, () => Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }>][] = [
	[
		"PGlite",
		async () => {
			const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-adapter-"));
			return { env: { DATA_DIR: dir }, cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
		}
	]
];
if (infra.includes("postgres"))
	engines.push([
		"PostgreSQL",
		async () => {
			const db = await createTestDatabase();
			return { env: { DATABASE_URL: db.url }, cleanup: db.drop };
		}
	]);
else if (process.env.REQUIRE_INFRA === "1") throw new Error("REQUIRE_INFRA=1 but PostgreSQL is not reachable");

describe.each(engines)("DbMixin on %s", (_engine, setup) => {
	let broker: ServiceBroker, stop: () => Promise<void>, cleanup: () => Promise<void>, auth: any;

	beforeAll(async () => {
		const s = await setup();
		cleanup = s.cleanup;
		const t = await createTestBroker(s.env, FILES);
		broker = t.broker;
		stop = t.stop;
		const r: any = await broker.call("auth.register", {
			email: "crud@example.com",
			password: "correct horse battery",
			name: "Crud"
		});
		auth = await broker.call("auth.resolve", { token: r.accessToken, organizationId: r.organization.id });
	}, 60_000);
	afterAll(async () => {
		await stop?.();
		await cleanup?.();
	});

	test("create, list with search, sort and pages, count, update, remove", async () => {
		for (const name of ["delta", "alpha", "charlie", "bravo", "echo"])
			await broker.call("auth-teams.create", { name, description: `team ${name}` }, as(auth));
		const page1: any = await broker.call("auth-teams.list", { sort: "name", page: 1, pageSize: 2 }, as(auth));
		expect(page1).toMatchObject({ total: 5, totalPages: 3, page: 1 });
		expect(page1.rows.map((r: any) => r.name)).toEqual(["alpha", "bravo"]);
		const page3: any = await broker.call("auth-teams.list", { sort: "-name", page: 3, pageSize: 2 }, as(auth));
		expect(page3.rows.map((r: any) => r.name)).toEqual(["alpha"]);
		const found: any = await broker.call("auth-teams.find", { search: "CHAR" }, as(auth));
		expect(found.map((r: any) => r.name)).toEqual(["charlie"]);
		// LIKE wildcards in the search text are matched literally.
		expect(await broker.call("auth-teams.find", { search: "%" }, as(auth))).toEqual([]);
		expect(await broker.call("auth-teams.count", {}, as(auth))).toBe(5);
		const echo =
			found.length && (await broker.call<any, any>("auth-teams.find", { query: { name: "echo" } }, as(auth)))[0];
		const updated: any = await broker.call("auth-teams.update", { id: echo.id, description: "changed" }, as(auth));
		expect(updated.description).toBe("changed");
		expect(new Date(updated.updated_at).getTime()).toBeGreaterThanOrEqual(new Date(echo.updated_at).getTime());
		await broker.call("auth-teams.remove", { id: echo.id }, as(auth));
		await expect(broker.call("auth-teams.get", { id: echo.id }, as(auth))).rejects.toMatchObject({ code: 404 });
		await expect(broker.call("auth-teams.get", { id: "not-a-uuid" }, as(auth))).rejects.toMatchObject({
			code: 404
		});
	});

	test("an unknown column in a query is refused, never interpolated", async () => {
		await expect(
			broker.call("auth-teams.find", { query: { "name; DROP TABLE teams": "x" } }, as(auth))
		).rejects.toMatchObject({ code: 422 });
		await expect(
			broker.call("auth-teams.find", { sort: "name; DROP TABLE teams" }, as(auth))
		).rejects.toMatchObject({
			code: 422
		});
		expect(await broker.call("auth-teams.count", {}, as(auth))).toBeGreaterThan(0);
	});

	test("a transaction that fails leaves nothing behind", async () => {
		const db = await getDb();
		const before = (await db.query("SELECT count(*)::int AS n FROM teams")).rows[0].n;
		await expect(
			db.transaction(async tx => {
				await tx.query("INSERT INTO teams (organization_id, name) VALUES ($1, 'tx-team')", [
					auth.organizationId
				]);
				throw new Error("boom");
			})
		).rejects.toThrow("boom");
		expect((await db.query("SELECT count(*)::int AS n FROM teams")).rows[0].n).toBe(before);
	});
});
