// workflow: the organization's limit on active workflow runs (WORKFLOW_RUNS_PER_ORGANIZATION), across workflows. A
// run over it is held queued, not refused, and starts when a slot frees; another organization is not held by it.
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { waitUntil } from "../helpers/wait";
import { registerOwner } from "../helpers/planning";
import type { AuthInfo } from "../../lib/permissions";
import { WebhookReceiver } from "../execution/webhook-receiver";

describeWith(["postgres"])("workflow: runs per organization (in-process broker, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let owner: AuthInfo;
	let other: AuthInfo;
	const hook = new WebhookReceiver();
	const call = (action: string, params: object, who: AuthInfo = owner): Promise<any> =>
		t.broker.call(action, params, as(who));
	const get = (id: string, who: AuthInfo = owner) => call("execution-runs.get", { id }, who);
	const gated = (name: string, who: AuthInfo) =>
		call(
			"workflow-definitions.create",
			{
				name,
				graph: {
					nodes: [
						{ id: "gate", kind: "manual_approval", title: "gate", config: {} },
						{ id: "go", kind: "http_webhook", title: "go", config: { url: `${hook.url}/${name}` } }
					],
					edges: [{ from: "gate", to: "go" }]
				}
			},
			who
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
				WORKFLOW_RUNS_PER_ORGANIZATION: "1"
			},
			[
				"services/auth/auth.service.ts",
				"services/execution/runs.service.ts",
				"services/workflow/definitions.service.ts"
			]
		);
		owner = await registerOwner(t.broker, "o@example.com");
		other = await registerOwner(t.broker, "x@example.com");
	});

	afterAll(async () => {
		await t?.stop();
		await db?.drop();
		await hook.stop();
	});

	test("a second run of another workflow waits queued for the first; another organization's run goes at once", async () => {
		const a = await gated("org-a", owner);
		const b = await gated("org-b", owner);
		const theirs = await gated("theirs", other);
		const first = await call("workflow-definitions.startRun", { id: a.id });
		const second = await call("workflow-definitions.startRun", { id: b.id });
		const third = await call("workflow-definitions.startRun", { id: theirs.id }, other);
		expect(second.status).toBe("queued");
		await waitUntil(
			"the first to wait for approval",
			() => get(first.id),
			(d: any) => d.run.status === "waiting"
		);
		await waitUntil(
			"the other organization's run to wait for approval",
			() => get(third.id, other),
			(d: any) => d.run.status === "waiting"
		);
		expect((await get(second.id)).run.status).toBe("queued");
		// Listed as it reads: among the queued runs, not the waiting ones.
		const listed = async (status: string) =>
			((await call("execution-runs.list", { status })) as { id: string }[]).map(r => r.id);
		expect(await listed("queued")).toContain(second.id);
		expect(await listed("waiting")).not.toContain(second.id);
		// The workflow list shows each workflow's newest run, read in one call.
		const rows = (await call("workflow-definitions.list", {})) as { id: string; lastRun: { id: string } | null }[];
		expect(Object.fromEntries(rows.map(r => [r.id, r.lastRun?.id ?? null]))).toEqual({
			[a.id]: first.id,
			[b.id]: second.id
		});
		await call("execution-runs.approve", { id: first.id, position: 0 });
		await waitUntil(
			"the first to end",
			() => get(first.id),
			(d: any) => d.run.status === "completed"
		);
		await waitUntil(
			"the second to take the slot",
			() => get(second.id),
			(d: any) => d.run.status === "waiting" && d.steps[0].status === "waiting_approval"
		);
		await call("execution-runs.cancel", { id: second.id });
		expect(hook.received.map(r => r.path)).toEqual(["/org-a"]);
	});

	test("a sub-workflow's run is not held behind its parent, which holds the organization's one slot", async () => {
		const child = await call("workflow-definitions.create", {
			name: "child",
			graph: {
				nodes: [{ id: "hit", kind: "http_webhook", title: "hit", config: { url: `${hook.url}/child` } }],
				edges: []
			}
		});
		const parent = await call("workflow-definitions.create", {
			name: "parent",
			graph: {
				nodes: [{ id: "sub", kind: "sub_workflow", title: "sub", config: { workflow: "child" } }],
				edges: []
			}
		});
		expect(child.id).toBeTruthy();
		const run = await call("workflow-definitions.startRun", { id: parent.id });
		await waitUntil(
			"the parent to end after its child",
			() => get(run.id),
			(d: any) => d.run.status === "completed" || d.run.status === "failed"
		);
		expect((await get(run.id)).run.status).toBe("completed");
		expect(hook.received.filter(r => r.path === "/child")).toHaveLength(1);
	});
});
