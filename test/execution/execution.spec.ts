// execution: runs of approved plans on the durable engine, in-process against the real PostgreSQL, with webhook
// steps against a local receiver: approval is checked on start, steps run in order with their idempotency keys,
// failures are retried with back-off, a timeout ends a step, approvals park the run, rollback undoes the completed
// steps last first and only once. The kill -9 / replica behaviour is in execution.cluster.spec.ts.
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { waitUntil } from "../helpers/wait";
import { permissionTable } from "../../lib/authz";
import { getDb } from "../../lib/db";
import type { AuthInfo } from "../../lib/permissions";
import { WebhookReceiver } from "./webhook-receiver";

describeWith(["postgres"])("execution (in-process broker, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let owner: AuthInfo;
	let other: AuthInfo;
	const hook = new WebhookReceiver();
	const call = (action: string, params: object, who: AuthInfo = owner): Promise<any> =>
		t.broker.call(action, params, as(who));
	const planEvents = async () =>
		(
			await (
				await getDb()
			).query<{ payload: any }>(
				"SELECT payload FROM outbox WHERE payload->>'type' = 'planning.plan.executed' ORDER BY id"
			)
		).rows.map(r => r.payload);
	const webhook = (path: string, extra: object = {}) => ({
		kind: "http_webhook",
		title: `call ${path}`,
		config: { url: `${hook.url}${path}`, method: "POST", body: { path }, ...extra }
	});
	const approvedPlan = async (title: string, steps: object[]) => {
		const plan = await call("planning-plans.create", { title, steps });
		await call("planning-plans.approve", { id: plan.id, revision: plan.revision });
		return plan;
	};
	const ended = (id: string, who: AuthInfo = owner) =>
		waitUntil(
			`run ${id} to end`,
			() => call("execution-runs.get", { id }, who),
			(d: any) => ["completed", "failed", "cancelled", "waiting"].includes(d.run.status)
		);

	beforeAll(async () => {
		await hook.start();
		db = await createTestDatabase();
		t = await createTestBroker(
			{
				DATABASE_URL: db.url,
				EXECUTION_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
				EXECUTION_POLL_MS: "100",
				EXECUTION_LEASE_MS: "2000",
				EXECUTION_RETRY_BASE_MS: "20"
			},
			[
				"services/auth/auth.service.ts",
				"services/planning/plans.service.ts",
				"services/execution/runs.service.ts"
			]
		);
		const member = async (email: string): Promise<AuthInfo> => {
			const user: any = await t.broker.call("auth.register", {
				email,
				password: "correct horse battery",
				name: "o"
			});
			return {
				kind: "session",
				userId: user.user.id,
				organizationId: user.organization.id,
				role: "owner",
				permissions: [...permissionTable().byRole.owner]
			};
		};
		owner = await member("o@example.com");
		other = await member("x@example.com");
	});

	afterAll(async () => {
		await t?.stop();
		await db?.drop();
		await hook.stop();
	});

	test("only the approved revision runs: an unapproved plan and an approved plan edited since are refused", async () => {
		const plan = await call("planning-plans.create", { title: "Unapproved", steps: [webhook("/x")] });
		await expect(call("execution-runs.start", { planId: plan.id })).rejects.toMatchObject({
			code: 409,
			message: expect.stringContaining("not approved")
		});
		await call("planning-plans.approve", { id: plan.id, revision: plan.revision });
		await call("planning-plans.update", { id: plan.id, title: "Edited after approval" });
		const refused = await call("execution-runs.start", { planId: plan.id }).catch(e => e);
		expect(refused).toMatchObject({ code: 409, data: [expect.objectContaining({ field: "planId" })] });
		expect(refused.message).toMatch(/revision 2 is not approved \(approved: 1\)/);
		expect(hook.received.filter(r => r.path === "/x")).toEqual([]);
		expect(await call("execution-runs.list", { planId: plan.id })).toEqual([]);
	});

	test("steps run in order with their keys; the end publishes planning.plan.executed (success)", async () => {
		const plan = await approvedPlan("Three calls", [webhook("/a1"), webhook("/a2"), webhook("/a3")]);
		const run = await call("execution-runs.start", { planId: plan.id });
		expect(run).toMatchObject({ status: "queued", total: 3, planRevision: plan.revision });
		const d = await ended(run.id);
		expect(d.run).toMatchObject({ status: "completed", outcome: "succeeded", done: 3 });
		expect(d.steps.map((s: any) => s.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
		expect(d.steps.map((s: any) => s.dependsOn)).toEqual([[], [0], [1]]);
		const got = hook.received.filter(r => r.path.startsWith("/a"));
		expect(got.map(r => [r.path, r.key])).toEqual([
			["/a1", `${run.id}:0`],
			["/a2", `${run.id}:1`],
			["/a3", `${run.id}:2`]
		]);
		expect(d.steps[0].output).toMatchObject({ status: 200 });
		expect(d.steps[0].logs.map((l: any) => l.message)).toEqual([
			expect.stringMatching(/^attempt 1 on /),
			"succeeded"
		]);
		// execution.plan.executed, republished by planning's consumer as planning.plan.executed.
		const events = await waitUntil(
			"planning.plan.executed",
			async () => (await planEvents()).filter(e => e.runId === run.id),
			e => e.length > 0
		);
		expect(events).toEqual([expect.objectContaining({ planId: plan.id, status: "success" })]);
		// Another organization sees nothing of it.
		await expect(call("execution-runs.get", { id: run.id }, other)).rejects.toMatchObject({ code: 404 });
		expect(await call("execution-runs.list", {}, other)).toEqual([]);
	});

	test("a failing step is retried with back-off and then succeeds; one failing for good fails the run", async () => {
		hook.failuresLeft.set("/flaky", 2);
		const plan = await approvedPlan("Flaky", [webhook("/flaky", { retries: 3 })]);
		const d = await ended((await call("execution-runs.start", { planId: plan.id })).id);
		expect(d.run).toMatchObject({ status: "completed", outcome: "succeeded" });
		expect(d.steps[0]).toMatchObject({ attempts: 3, failures: 2, status: "succeeded" });
		expect(d.steps[0].logs.filter((l: any) => /retry \d of 3 in \d+ ms/.test(l.message))).toHaveLength(2);

		hook.failuresLeft.set("/down", 100);
		const down = await approvedPlan("Down", [webhook("/down", { retries: 1 }), webhook("/never")]);
		const f = await ended((await call("execution-runs.start", { planId: down.id })).id);
		expect(f.run).toMatchObject({ status: "failed", outcome: "failed" });
		expect(f.run.error).toMatch(/step 1 \(call \/down\) failed: POST 127.0.0.1:\d+ answered 503/);
		expect(f.steps.map((s: any) => [s.status, s.attempts])).toEqual([
			["failed", 2],
			["pending", 0]
		]);
		expect(hook.received.filter(r => r.path === "/never")).toEqual([]);
		const events = await waitUntil(
			"planning.plan.executed",
			async () => (await planEvents()).filter(e => e.planId === down.id),
			e => e.length > 0
		);
		expect(events).toEqual([expect.objectContaining({ status: "failed" })]);
	});

	test("a step past its time limit fails; a 4xx is not retried; a sub-workflow needs the workflow module", async () => {
		const slow = await approvedPlan("Slow", [webhook("/hang", { timeout_ms: 300, retries: 0 })]);
		const s = await ended((await call("execution-runs.start", { planId: slow.id })).id);
		expect(s.steps[0]).toMatchObject({ status: "failed", error: "timed out after 300 ms" });

		hook.statusOf.set("/gone", 404);
		const gone = await approvedPlan("Gone", [webhook("/gone", { retries: 5 })]);
		const g = await ended((await call("execution-runs.start", { planId: gone.id })).id);
		expect(g.steps[0]).toMatchObject({ status: "failed", attempts: 1 });

		const sub = await approvedPlan("Sub", [{ kind: "sub_workflow", title: "child", config: { workflow: "w" } }]);
		const w = await ended((await call("execution-runs.start", { planId: sub.id })).id);
		// Without the workflow module running, the step fails with what is missing.
		expect(w.run.error).toMatch(/workflow-definitions\.startChild/);
	});

	test("an approval step and an irreversible step park the run until a person approves them", async () => {
		const plan = await approvedPlan("Gated", [
			webhook("/g1"),
			{ kind: "manual_approval", title: "sign-off", config: { message: "ok?" } },
			webhook("/g2", { irreversible: true })
		]);
		const run = await call("execution-runs.start", { planId: plan.id });
		let d = await ended(run.id);
		expect(d.run.status).toBe("waiting");
		expect(d.steps.map((s: any) => s.status)).toEqual(["succeeded", "waiting_approval", "pending"]);
		await expect(call("execution-runs.approve", { id: run.id, position: 2 })).rejects.toMatchObject({ code: 409 });
		await expect(call("execution-runs.approve", { id: run.id, position: 1 }, other)).rejects.toMatchObject({
			code: 404
		});
		await call("execution-runs.approve", { id: run.id, position: 1 });
		d = await waitUntil(
			"the irreversible step to wait",
			() => call("execution-runs.get", { id: run.id }),
			(x: any) => x.steps[2].status === "waiting_approval" && x.run.status === "waiting"
		);
		expect(hook.received.filter(r => r.path === "/g2")).toEqual([]);
		await call("execution-runs.approve", { id: run.id, position: 2 });
		d = await waitUntil(
			"the run to complete",
			() => call("execution-runs.get", { id: run.id }),
			(x: any) => x.run.status === "completed"
		);
		expect(d.steps[1]).toMatchObject({ status: "succeeded", approvedBy: owner.userId });
		expect(hook.received.filter(r => r.path === "/g2")).toHaveLength(1);
	});

	test("only a step's approvers approve it; a cancelled run takes no approval", async () => {
		const plan = await approvedPlan("Cancelled", [
			{ kind: "manual_approval", title: "only Bob", config: { approvers: [other.userId] } },
			webhook("/c1")
		]);
		const run = await call("execution-runs.start", { planId: plan.id });
		expect((await ended(run.id)).run.status).toBe("waiting");
		await expect(call("execution-runs.approve", { id: run.id, position: 0 })).rejects.toMatchObject({ code: 403 });
		expect(await call("execution-runs.cancel", { id: run.id })).toMatchObject({ status: "cancelled" });
		await expect(call("execution-runs.approve", { id: run.id, position: 0 })).rejects.toMatchObject({
			code: 409,
			message: expect.stringContaining("cancelled")
		});
		expect(hook.received.filter(r => r.path === "/c1")).toEqual([]);
	});

	test("rollback undoes the completed steps last first, and asked again undoes nothing twice", async () => {
		hook.statusOf.set("/r-fail", 500);
		const undo = (p: string) => ({ undo: { url: `${hook.url}/undo${p}`, method: "DELETE" } });
		const plan = await approvedPlan("Undoable", [
			webhook("/r1", undo("/r1")),
			webhook("/r2"),
			webhook("/r3", undo("/r3")),
			webhook("/r-fail", { retries: 0 })
		]);
		const run = await call("execution-runs.start", { planId: plan.id });
		expect((await ended(run.id)).run.status).toBe("failed");
		const back = await call("execution-runs.rollback", { id: run.id });
		expect(back).toMatchObject({ kind: "rollback", status: "queued" });
		const d = await waitUntil(
			"the rollback to complete",
			() => call("execution-runs.get", { id: run.id }),
			(x: any) => x.run.status === "completed"
		);
		expect(d.run).toMatchObject({ kind: "rollback", outcome: "failed", rolledBackAt: expect.anything() });
		expect(d.steps.map((s: any) => s.undoStatus)).toEqual(["done", "none", "done", "none"]);
		const undos = () => hook.received.filter(r => r.path.startsWith("/undo"));
		expect(undos().map(r => [r.path, r.key])).toEqual([
			["/undo/r3", `${run.id}:2:undo`],
			["/undo/r1", `${run.id}:0:undo`]
		]);
		expect(await call("execution-runs.rollback", { id: run.id })).toMatchObject({ status: "completed" });
		expect(undos()).toHaveLength(2);
		// A run still going is not rolled back.
		hook.holding = true;
		const busy = await call("execution-runs.start", { planId: (await approvedPlan("Busy", [webhook("/b")])).id });
		await waitUntil(
			"the busy step to be sent",
			async () => hook.held.length,
			n => n === 1
		);
		await expect(call("execution-runs.rollback", { id: busy.id })).rejects.toMatchObject({ code: 409 });
		hook.holding = false;
		hook.releaseAll();
		expect((await ended(busy.id)).run.status).toBe("completed");
	});
});
