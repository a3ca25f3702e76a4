// Gating under concurrency: a task's move into a started state checks its blockers under the task's row lock, and
// adding a `blocks` relation takes the same lock, so the two never interleave. The other side of each race is a
// transaction this test holds open on its own connection; the test waits until the action is queued behind it
// (pg_stat_activity), never for a time.
import pg from "pg";
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { waitUntil } from "../helpers/wait";
import { registerOwner } from "../helpers/planning";
import type { AuthInfo } from "../../lib/permissions";

describeWith(["postgres"])("planning gating races", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let sql: pg.Client;
	let owner: AuthInfo;
	const call = (action: string, params: object): Promise<any> => t.broker.call(action, params, as(owner));
	const stateOf = async (group: string) =>
		(await call("planning-states.find", {})).find((s: any) => s.group === group).id as string;
	// Some backend of the test database is waiting for a row lock held by `sql`.
	const queuedBehindLock = () =>
		waitUntil(
			"a write waiting for the row lock",
			async () =>
				(
					await sql.query<{ n: number }>(
						`SELECT count(*)::int AS n FROM pg_stat_activity
						 WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`
					)
				).rows[0].n,
			n => n > 0
		);

	beforeAll(async () => {
		db = await createTestDatabase();
		t = await createTestBroker({ DATABASE_URL: db.url }, [
			"services/auth/auth.service.ts",
			"services/planning/states.service.ts",
			"services/planning/entities.service.ts",
			"services/planning/relations.service.ts"
		]);
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		owner = await registerOwner(t.broker, "race@example.com");
	});

	afterAll(async () => {
		await sql?.end();
		await t?.stop();
		await db?.drop();
	});

	test("a blocker added while the task is starting is seen by the start, which is refused", async () => {
		const blocker = await call("planning-entities.create", { kind: "task", title: "Blocker one" });
		const task = await call("planning-entities.create", { kind: "task", title: "Starting task" });
		const started = await stateOf("started");
		// The relation's insert, caught holding the task's lock (as planning-relations.create holds it).
		await sql.query("BEGIN");
		await sql.query("SELECT 1 FROM planning_entities WHERE id = $1 FOR NO KEY UPDATE", [task.id]);
		const move = call("planning-entities.update", { id: task.id, state_id: started }).catch(e => e);
		await queuedBehindLock();
		await sql.query(
			"INSERT INTO planning_relations (organization_id, kind, source_id, target_id) VALUES ($1, 'blocks', $2, $3)",
			[owner.organizationId, blocker.id, task.id]
		);
		await sql.query("COMMIT");
		const err = await move;
		expect(err).toMatchObject({ code: 422 });
		expect(err.data[0]).toMatchObject({ field: "state_id" });
		expect(err.message).toContain("Blocker one");
		expect((await call("planning-entities.get", { id: task.id })).state_id).not.toBe(started);
	});

	test("a blocks relation waits for a start in progress and lands after it", async () => {
		const blocker = await call("planning-entities.create", { kind: "task", title: "Blocker two" });
		const task = await call("planning-entities.create", { kind: "task", title: "Started task" });
		const started = await stateOf("started");
		// The start, caught after its check under the task's lock and before its commit.
		await sql.query("BEGIN");
		await sql.query("SELECT 1 FROM planning_entities WHERE id = $1 FOR NO KEY UPDATE", [task.id]);
		await sql.query("UPDATE planning_entities SET state_id = $2 WHERE id = $1", [task.id, started]);
		let added = false;
		const relation = call("planning-relations.create", {
			kind: "blocks",
			source_id: blocker.id,
			target_id: task.id
		}).then(r => ((added = true), r));
		await queuedBehindLock();
		expect(added).toBe(false);
		await sql.query("COMMIT");
		const r = await relation;
		expect(r).toMatchObject({ kind: "blocks", source_id: blocker.id, target_id: task.id });
		expect((await call("planning-entities.blockers", { id: task.id })).map((b: any) => b.id)).toEqual([blocker.id]);
		// The repeated relation is still a 409 naming what repeats.
		await expect(
			call("planning-relations.create", { kind: "blocks", source_id: blocker.id, target_id: task.id })
		).rejects.toMatchObject({ code: 409 });
	});
});
