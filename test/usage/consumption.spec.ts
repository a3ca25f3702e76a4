// Which limits count an event, decided for a whole batch from one read of its organizations' limits: by
// organization, caller (user, API key, team membership) and the limit's creation time, on real PostgreSQL.
import { describeWith, createTestDatabase } from "../helpers/infra";
import { openPostgres } from "../../lib/db/driver";
import type { Db } from "../../lib/db";
import { migrate } from "../../lib/db/migrate";
import { consume, limitsOfBatch, Consumed } from "../../services/usage/consumption";

describeWith(["postgres"])("usage-limits consumption: the limits of a batch (real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let conn: Db;
	const ids: Record<string, string> = {};

	const one = async (sql: string, params: unknown[] = []) => (await conn.query(sql, params)).rows[0];
	const quota = async (org: string, name: string, scope: string, subject: string | null, createdAt = "now()") =>
		(
			await one(
				`INSERT INTO usage_quotas (organization_id, name, metric, scope, subject_id, period, amount, created_at)
				 VALUES ($1, $2, 'requests', $3, $4, 'month', 10, ${createdAt}) RETURNING id`,
				[org, name, scope, subject]
			)
		).id as string;
	const event = (org: string, extra: Partial<Consumed> = {}): Consumed => ({
		organizationId: org,
		occurredAt: new Date().toISOString(),
		inputTokens: 1,
		outputTokens: 1,
		toolCalls: 0,
		cost: 0,
		...extra
	});

	beforeAll(async () => {
		db = await createTestDatabase();
		conn = await openPostgres(db.url, 2);
		await migrate(conn);
		for (const u of ["ann", "bob"])
			ids[u] = (
				await one("INSERT INTO users (email, name, password_hash) VALUES ($1, $1, 'x') RETURNING id", [
					`${u}@example.com`
				])
			).id;
		for (const o of ["acme", "globex"])
			ids[o] = (await one("INSERT INTO organizations (name, slug) VALUES ($1, $1) RETURNING id", [o])).id;
		ids.team = (
			await one("INSERT INTO teams (organization_id, name) VALUES ($1, 'core') RETURNING id", [ids.acme])
		).id;
		await conn.query("INSERT INTO team_members (team_id, user_id, organization_id) VALUES ($1, $2, $3)", [
			ids.team,
			ids.ann,
			ids.acme
		]);
		ids.orgQuota = await quota(ids.acme, "acme requests", "organization", null);
		ids.teamQuota = await quota(ids.acme, "core requests", "team", ids.team);
		ids.bobQuota = await quota(ids.acme, "bob requests", "user", ids.bob);
		// Created after the events below happened: they are not its.
		ids.lateQuota = await quota(ids.acme, "late", "organization", null, "now() + interval '1 hour'");
		ids.globexQuota = await quota(ids.globex, "globex requests", "organization", null);
	});

	afterAll(async () => {
		await conn?.close();
		await db?.drop();
	});

	test("each event gets the limits of its organization that apply to its caller and existed when it happened", async () => {
		const ann = event(ids.acme, { userId: ids.ann });
		const bob = event(ids.acme, { userId: ids.bob });
		const key = event(ids.acme, { apiKeyId: ids.ann }); // an API key's event: no user, so no team
		const other = event(ids.globex, { userId: ids.ann }); // ann in another organization: not in its team
		const limitsOf = await limitsOfBatch(conn, [ann, bob, key, other]);
		const names = (e: Consumed) => limitsOf(e).map(l => l.id);
		expect(names(ann).sort()).toEqual([ids.orgQuota, ids.teamQuota].sort());
		expect(names(bob).sort()).toEqual([ids.orgQuota, ids.bobQuota].sort());
		expect(names(key)).toEqual([ids.orgQuota]);
		expect(names(other)).toEqual([ids.globexQuota]);
		// An event after the late limit's creation counts for it too.
		const later = event(ids.acme, { occurredAt: new Date(Date.now() + 2 * 3600_000).toISOString() });
		expect((await limitsOfBatch(conn, [later]))(later).map(l => l.id)).toContain(ids.lateQuota);
	});

	test("consuming the batch adds each event to its limits' durable consumption", async () => {
		const batch = [event(ids.acme, { userId: ids.ann }), event(ids.acme, { userId: ids.bob })];
		const limitsOf = await limitsOfBatch(conn, batch);
		for (const e of batch) await consume(conn, e, limitsOf(e));
		const used = async (id: string) =>
			Number(
				(
					await one(
						"SELECT coalesce(sum(used), 0) AS used FROM usage_limit_consumption WHERE limit_id = $1",
						[id]
					)
				).used
			);
		expect(await used(ids.orgQuota)).toBe(2);
		expect(await used(ids.teamQuota)).toBe(1);
		expect(await used(ids.bobQuota)).toBe(1);
		expect(await used(ids.globexQuota)).toBe(0);
		expect(await used(ids.lateQuota)).toBe(0);
	});

	test("a batch of organizations without limits costs one read and applies nothing", async () => {
		const none = (await one("INSERT INTO organizations (name, slug) VALUES ('initech', 'initech') RETURNING id"))
			.id;
		const e = event(none, { userId: ids.ann });
		expect((await limitsOfBatch(conn, [e]))(e)).toEqual([]);
	});
});
