// A workflow run through a restart of the whole cluster: real child processes over RabbitMQ and one PostgreSQL.
// The run parks on a wait step, every node is killed with SIGKILL, the nodes are started again, and the run goes
// on from its committed states: every step's webhook arrives exactly once.
import pg from "pg";
import { startTestCluster, type ClusterNode, type TestCluster } from "../helpers/cluster";
import { describeWith } from "../helpers/infra";
import { as } from "../helpers/broker";
import { waitUntil } from "../helpers/wait";
import type { AuthInfo } from "../../lib/permissions";
import { WebhookReceiver } from "../execution/webhook-receiver";

describeWith(["postgres", "rabbitmq"])("workflow: a run survives a restart of the whole cluster", () => {
	let cluster: TestCluster;
	let pool: pg.Pool;
	let user: AuthInfo;
	const hook = new WebhookReceiver();
	let generation = 0;

	const startAll = async (): Promise<ClusterNode[]> => {
		generation++;
		const nodes = [
			cluster.start(`base${generation}`, "auth"),
			cluster.start(`engine${generation}`, "execution"),
			cluster.start(`workflow${generation}`, "workflow")
		];
		await Promise.all(nodes.map(n => n.ready));
		return nodes;
	};

	beforeAll(async () => {
		await hook.start();
		cluster = await startTestCluster("wf", {
			EXECUTION_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
			EXECUTION_LEASE_MS: "1500",
			EXECUTION_POLL_MS: "200",
			EXECUTION_RETRY_BASE_MS: "50"
		});
		pool = new pg.Pool({ connectionString: cluster.db.url, max: 2 });
	}, 180_000);

	afterAll(async () => {
		await pool?.end();
		await cluster?.stop();
		await hook.stop();
	});

	test("a run with a wait step completes after kill -9 of every process, each step exactly once", async () => {
		const first = await startAll();
		user = await cluster.register("wf-owner@example.com");
		const broker = await cluster.caller(["workflow-definitions", "execution-runs"]);
		const call = (action: string, params: object): Promise<any> => broker.call(action, params, as(user));
		const node = (id: string) => ({
			id,
			kind: "http_webhook",
			title: id,
			config: { url: `${hook.url}/${id}`, method: "POST", body: { id } }
		});
		const def = await call("workflow-definitions.create", {
			name: "Survives",
			graph: {
				nodes: [
					node("before"),
					node("side"),
					{ id: "pause", kind: "wait", title: "pause", config: { seconds: 4 } },
					node("after")
				],
				edges: [
					{ from: "before", to: "pause" },
					{ from: "before", to: "side" },
					{ from: "pause", to: "after" },
					{ from: "side", to: "after" }
				]
			}
		});
		const run = await call("workflow-definitions.startRun", { id: def.id });
		const parked = await waitUntil(
			"the run to park on its wait step",
			async () =>
				(
					await pool.query<{ status: string; sleeping: number }>(
						`SELECT r.status, (SELECT count(*)::int FROM execution_steps s WHERE s.run_id = r.id
						AND s.status = 'sleeping') AS sleeping FROM execution_runs r WHERE r.id = $1`,
						[run.id]
					)
				).rows[0],
			r => r?.status === "waiting" && r.sleeping === 1,
			60_000
		);
		expect(parked).toEqual({ status: "waiting", sleeping: 1 });
		expect(hook.received.filter(r => r.path === "/after")).toEqual([]);

		await Promise.all(first.map(n => n.stop("SIGKILL")));
		await startAll();

		const done = await waitUntil(
			"the run to complete on the new nodes",
			() => call("execution-runs.get", { id: run.id }),
			(d: any) => ["completed", "failed", "cancelled"].includes(d.run.status),
			120_000
		);
		expect(done.run.status).toBe("completed");
		expect(Object.fromEntries(done.steps.map((s: any) => [s.nodeId, s.status]))).toEqual({
			before: "succeeded",
			side: "succeeded",
			pause: "succeeded",
			after: "succeeded"
		});
		for (const path of ["/before", "/side", "/after"])
			expect([path, hook.received.filter(r => r.path === path).length]).toEqual([path, 1]);
		expect(hook.received.find(r => r.path === "/after")!.key).toBe(`${run.id}:3`);
	}, 300_000);
});
