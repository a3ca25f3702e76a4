// planning: entity kinds through one CRUD, states in Plane's groups, relations, dependency gating (cancel and delete
// release a blocked task), cycles' dates and plan approval. Permissions, tenancy, error shape and OpenAPI are checked
// for every module by test/platform/conformance.spec.ts.
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { waitUntil } from "../helpers/wait";
import { registerOwner } from "../helpers/planning";
import { getDb } from "../../lib/db";
import { KIND_NAMES } from "../../services/planning/planning.kinds";
import type { AuthInfo } from "../../lib/permissions";

describeWith(["postgres"])("planning (in-process broker, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let owner: AuthInfo;
	let other: AuthInfo;
	const call = (action: string, params: object, who: AuthInfo = owner): Promise<any> =>
		t.broker.call(action, params, as(who));
	const events = async (type: string) =>
		(
			await (
				await getDb()
			).query<{ payload: any }>(
				"SELECT payload FROM outbox WHERE channel = 'planning.events' AND payload->>'type' = $1 ORDER BY id",
				[type]
			)
		).rows.map(r => r.payload);
	const stateOf = async (group: string) =>
		(await call("planning-states.find", {})).find((s: any) => s.group === group).id as string;

	beforeAll(async () => {
		db = await createTestDatabase();
		t = await createTestBroker({ DATABASE_URL: db.url }, [
			"services/auth/auth.service.ts",
			"services/planning/states.service.ts",
			"services/planning/entities.service.ts",
			"services/planning/relations.service.ts",
			"services/planning/cycles.service.ts",
			"services/planning/plans.service.ts"
		]);
		owner = await registerOwner(t.broker, "o@example.com");
		other = await registerOwner(t.broker, "x@example.com");
	});

	afterAll(async () => {
		await t?.stop();
		await db?.drop();
	});

	test("states: one per Plane group seeded for each organization", async () => {
		const states = await call("planning-states.find", {});
		expect(states.map((s: any) => s.group).sort()).toEqual(
			["backlog", "cancelled", "completed", "started", "unstarted"].sort()
		);
		const others = await call("planning-states.find", {}, other);
		expect(others.map((s: any) => s.id)).not.toContain(states[0].id);
		await expect(call("planning-states.create", { name: "Weird", group: "doing" })).rejects.toMatchObject({
			code: 422
		});
	});

	test("every kind is created through one CRUD, its fields validated by its declaration", async () => {
		for (const kind of KIND_NAMES) {
			const e = await call("planning-entities.create", { kind, title: `A ${kind}` });
			expect(e).toMatchObject({ kind, title: `A ${kind}`, fields: {} });
			expect(e.state_id).toBe(await stateOf("backlog"));
		}
		const task = await call("planning-entities.create", { kind: "task", title: "T", fields: { priority: "high" } });
		expect(task.fields).toEqual({ priority: "high" });
		await expect(
			call("planning-entities.create", { kind: "task", title: "T", fields: { priority: "meh" } })
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "fields.priority" })] });
		await expect(
			call("planning-entities.create", { kind: "task", title: "T", fields: { version: "1.0.0" } })
		).rejects.toMatchObject({ code: 422 });
		await expect(
			call("planning-entities.create", { kind: "release", title: "R", fields: { version: "1.0.0" } })
		).resolves.toMatchObject({ fields: { version: "1.0.0" } });
		await expect(call("planning-entities.create", { kind: "spaceship", title: "S" })).rejects.toMatchObject({
			code: 422
		});
		const roadmap = await call("planning-entities.create", {
			kind: "roadmap",
			title: "2027",
			start_date: "2027-01-01",
			due_date: "2027-06-30"
		});
		await expect(
			call("planning-entities.update", { id: roadmap.id, due_date: "2026-12-01" })
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "due_date" })] });
		const listed = await call("planning-entities.list", { query: { kind: "roadmap" } });
		expect(listed.rows.map((r: any) => r.kind)).toEqual(["roadmap", "roadmap"]);
		expect(listed.rows.map((r: any) => r.id)).toContain(roadmap.id);
		expect((await call("planning-entities.list", {}, other)).rows).toEqual([]);
	});

	test("relations and parents: same organization, no self-relation, no parent cycle", async () => {
		const a = await call("planning-entities.create", { kind: "task", title: "a" });
		const b = await call("planning-entities.create", { kind: "task", title: "b", parent_id: a.id });
		const c = await call("planning-entities.create", { kind: "task", title: "c", parent_id: b.id });
		await expect(call("planning-entities.update", { id: a.id, parent_id: c.id })).rejects.toMatchObject({
			code: 422,
			data: [expect.objectContaining({ field: "parent_id" })]
		});
		await expect(call("planning-entities.update", { id: a.id, parent_id: a.id })).rejects.toMatchObject({
			code: 422
		});
		await expect(
			call("planning-relations.create", { kind: "relates", source_id: a.id, target_id: a.id })
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "target_id" })] });
		const foreign = await call("planning-entities.create", { kind: "task", title: "f" }, other);
		await expect(
			call("planning-relations.create", { kind: "blocks", source_id: a.id, target_id: foreign.id })
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "target_id" })] });
		await expect(call("planning-entities.update", { id: a.id, parent_id: foreign.id })).rejects.toMatchObject({
			code: 422
		});
		const dup = await call("planning-relations.create", { kind: "duplicates", source_id: c.id, target_id: a.id });
		expect(dup).toMatchObject({ kind: "duplicates", source_id: c.id, target_id: a.id });
		await expect(
			call("planning-relations.create", { kind: "duplicates", source_id: c.id, target_id: a.id })
		).rejects.toMatchObject({ code: 409 });
	});

	test("gating: a blocked task cannot start; cancelling one blocker and deleting the other releases it", async () => {
		const started = await stateOf("started");
		const cancelled = await stateOf("cancelled");
		const task = await call("planning-entities.create", { kind: "task", title: "ship" });
		const b1 = await call("planning-entities.create", { kind: "task", title: "design" });
		const b2 = await call("planning-entities.create", { kind: "issue", title: "bug" });
		await call("planning-relations.create", { kind: "blocks", source_id: b1.id, target_id: task.id });
		await call("planning-relations.create", { kind: "blocks", source_id: b2.id, target_id: task.id });
		const refused = await call("planning-entities.update", { id: task.id, state_id: started }).catch(e => e);
		expect(refused).toMatchObject({ code: 422, data: [expect.objectContaining({ field: "state_id" })] });
		expect(refused.message).toContain(b1.id);
		expect(refused.message).toContain(b2.id);

		await call("planning-entities.update", { id: b1.id, state_id: cancelled });
		expect((await call("planning-entities.blockers", { id: task.id })).map((b: any) => b.id)).toEqual([b2.id]);
		expect((await events("planning.task.unblocked")).map(e => e.entityId)).not.toContain(task.id);
		await expect(call("planning-entities.update", { id: task.id, state_id: started })).rejects.toMatchObject({
			code: 422
		});

		await call("planning-entities.remove", { id: b2.id });
		const unblocked = await waitUntil(
			"planning.task.unblocked for the task",
			() => events("planning.task.unblocked"),
			rows => rows.some(e => e.entityId === task.id)
		);
		expect(unblocked.filter(e => e.entityId === task.id)).toHaveLength(1);
		expect(await call("planning-entities.blockers", { id: task.id })).toEqual([]);
		await expect(call("planning-entities.update", { id: task.id, state_id: started })).resolves.toMatchObject({
			state_id: started
		});
	});

	test("gating: completing the blocker releases the task with planning.task.unblocked", async () => {
		const task = await call("planning-entities.create", { kind: "task", title: "deploy" });
		const blocker = await call("planning-entities.create", { kind: "task", title: "review" });
		await call("planning-relations.create", { kind: "blocks", source_id: blocker.id, target_id: task.id });
		await call("planning-entities.update", { id: blocker.id, state_id: await stateOf("completed") });
		const rows = await waitUntil(
			"the unblocked event",
			() => events("planning.task.unblocked"),
			r => r.some(e => e.entityId === task.id)
		);
		expect(rows.find(e => e.entityId === task.id)).toMatchObject({ organizationId: owner.organizationId });
	});

	test("cycles: end after start; items must be the organization's", async () => {
		const e = await call("planning-entities.create", { kind: "task", title: "in cycle" });
		const cycle = await call("planning-cycles.create", {
			name: "Sprint 1",
			start_date: "2027-01-04",
			end_date: "2027-01-18",
			entity_ids: [e.id]
		});
		expect(cycle.entity_ids).toEqual([e.id]);
		await expect(
			call("planning-cycles.create", { name: "Bad", start_date: "2027-01-18", end_date: "2027-01-04" })
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "end_date" })] });
		await expect(call("planning-cycles.update", { id: cycle.id, end_date: "2027-01-01" })).rejects.toMatchObject({
			code: 422
		});
		const foreign = await call("planning-entities.create", { kind: "task", title: "f" }, other);
		await expect(call("planning-cycles.update", { id: cycle.id, entity_ids: [foreign.id] })).rejects.toMatchObject({
			code: 422,
			data: [expect.objectContaining({ field: "entity_ids" })]
		});
	});

	test("plans: steps validated per kind; approval; an edited approved plan is not runnable", async () => {
		const steps = [
			{ kind: "ai_completion", title: "Draft", config: { prompt: "release-notes" } },
			{ kind: "agent_run", title: "Code", config: { agent: "coder" } },
			{ kind: "mcp_tool_call", title: "Open PR", config: { server: "github", tool: "create_pr" } },
			{ kind: "http_webhook", title: "Notify", config: { url: "http://127.0.0.1:9/hook", method: "POST" } },
			{ kind: "manual_approval", title: "Sign off", config: {} },
			{ kind: "sub_workflow", title: "Deploy", config: { workflow: "deploy" } }
		];
		const plan = await call("planning-plans.create", { title: "Release", goal: "ship 1.0", steps });
		expect(plan.steps.map((s: any) => s.kind)).toEqual(steps.map(s => s.kind));
		expect(await call("planning-plans.runnable", { id: plan.id })).toMatchObject({ runnable: false });
		await expect(
			call("planning-plans.create", { title: "Bad", steps: [{ kind: "http_webhook", title: "x", config: {} }] })
		).rejects.toMatchObject({ code: 422, data: [expect.objectContaining({ field: "steps[0].config.url" })] });
		await expect(
			call("planning-plans.create", { title: "Bad", steps: [{ kind: "teleport", title: "x" }] })
		).rejects.toMatchObject({ code: 422 });

		const approved = await call("planning-plans.approve", { id: plan.id, revision: plan.revision });
		expect(approved).toMatchObject({ approved_revision: plan.revision, approved_by: owner.userId });
		expect(await call("planning-plans.runnable", { id: plan.id })).toEqual({ runnable: true, reason: null });

		const edited = await call("planning-plans.update", { id: plan.id, steps: steps.slice(0, 2) });
		expect(edited.revision).toBe(plan.revision + 1);
		const after = await call("planning-plans.runnable", { id: plan.id });
		expect(after.runnable).toBe(false);
		expect(after.reason).toContain("approve it again");
		// Approving the revision the approver saw before the edit is refused.
		await expect(call("planning-plans.approve", { id: plan.id, revision: plan.revision })).rejects.toMatchObject({
			code: 409
		});
		await call("planning-plans.approve", { id: edited.id, revision: edited.revision });
		expect((await call("planning-plans.runnable", { id: plan.id })).runnable).toBe(true);

		const created = await waitUntil(
			"plan events",
			async () => [...(await events("planning.plan.created")), ...(await events("planning.plan.approved"))],
			rows => rows.length >= 3
		);
		expect(created.map(e => e.type)).toEqual([
			"planning.plan.created",
			"planning.plan.approved",
			"planning.plan.approved"
		]);
		await expect(call("planning-plans.runnable", { id: plan.id }, other)).rejects.toMatchObject({ code: 404 });
	});
});
