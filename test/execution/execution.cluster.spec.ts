// The durable engine under kill -9, with real child-process replicas over RabbitMQ and one PostgreSQL: a 10-step
// plan of webhook steps (each step's effect is observable at a local receiver that applies each idempotency key
// once). The replica driving the run is killed in the middle of every step (its request sent, no answer yet) and
// again at every step boundary (just after the step's success is committed). The run still completes, every
// step's effect is applied exactly once and in order, and no completed step is ever sent again.
import pg from "pg";
import { startTestCluster, type ClusterNode, type TestCluster } from "../helpers/cluster";
import { describeWith } from "../helpers/infra";
import { as } from "../helpers/broker";
import { waitUntil } from "../helpers/wait";
import type { AuthInfo } from "../../lib/permissions";
import { WebhookReceiver } from "./webhook-receiver";

const STEPS = 10;

describeWith(["postgres", "rabbitmq"])("execution: kill -9 of the executing replica (cluster)", () => {
	let cluster: TestCluster;
	let pool: pg.Pool;
	let user: AuthInfo;
	const hook = new WebhookReceiver();
	const engines = new Map<string, ClusterNode>();
	let started = 0;
	const killed = new Set<string>();

	const startEngine = () => {
		const node = cluster.start(`engine${++started}`, "execution");
		engines.set(node.nodeID, node);
		node.ready.catch(() => undefined);
		return node;
	};
	const leaseOwner = async (runId: string) => {
		const { rows } = await pool.query<{ lease_owner: string | null; status: string }>(
			"SELECT lease_owner, status FROM execution_runs WHERE id = $1",
			[runId]
		);
		return { node: rows[0]?.lease_owner?.split(":")[0] ?? null, status: rows[0]?.status };
	};
	const stepStatus = async (runId: string, position: number) =>
		(
			await pool.query<{ status: string }>(
				"SELECT status FROM execution_steps WHERE run_id = $1 AND position = $2",
				[runId, position]
			)
		).rows[0]?.status;

	// Kills the replica holding the run's lease; a new replica is started so two stay alive.
	const killOwner = async (runId: string): Promise<string | null> => {
		const { node } = await leaseOwner(runId);
		const proc = node ? engines.get(node) : undefined;
		if (!node || !proc || killed.has(node)) return null;
		killed.add(node);
		await proc.stop("SIGKILL");
		startEngine();
		return node;
	};
	// Waits until a live replica that has finished starting holds the run (the dead one's lease ran out).
	const takenOver = (runId: string) =>
		waitUntil(
			"a live replica to take the run over",
			() => leaseOwner(runId),
			o => o.status !== "running" || (!!o.node && !killed.has(o.node)),
			120_000
		);
	const liveReplicas = async (n: number) => {
		const live = [...engines.values()].filter(e => !killed.has(e.nodeID));
		await Promise.all(live.slice(0, n).map(e => e.ready));
	};

	beforeAll(async () => {
		await hook.start();
		cluster = await startTestCluster("exec", {
			EXECUTION_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
			EXECUTION_LEASE_MS: "1500",
			EXECUTION_POLL_MS: "200",
			EXECUTION_RETRY_BASE_MS: "50"
		});
		pool = new pg.Pool({ connectionString: cluster.db.url, max: 2 });
		const base = cluster.start("base", "auth,planning");
		startEngine();
		startEngine();
		await Promise.all([base.ready, ...[...engines.values()].map(e => e.ready)]);
		user = await cluster.register("exec-owner@example.com");
	}, 180_000);

	afterAll(async () => {
		await pool?.end();
		await cluster?.stop();
		await hook.stop();
	});

	test("every step runs exactly once through a kill mid-step and a kill at every step boundary", async () => {
		const broker = await cluster.caller(["planning-plans", "execution-runs"]);
		const call = (action: string, params: object): Promise<any> => broker.call(action, params, as(user));
		const steps = Array.from({ length: STEPS }, (_, i) => ({
			kind: "http_webhook",
			title: `step ${i + 1}`,
			config: { url: `${hook.url}/step/${i}`, method: "POST", body: { i } }
		}));
		const plan = await call("planning-plans.create", { title: "Ten steps", steps });
		await call("planning-plans.approve", { id: plan.id, revision: plan.revision });
		hook.holding = true;
		const run = await call("execution-runs.start", { planId: plan.id });
		const key = (i: number) => `${run.id}:${i}`;
		// When the test saw each step's success committed: no request for that step may arrive after it.
		const succeededAt: number[] = [];
		let kills = 0;

		for (let i = 0; i < STEPS; i++) {
			// Mid-step: the step's request has reached the receiver and waits for its answer.
			await waitUntil(
				`step ${i + 1}'s request`,
				async () => hook.held.some(h => h.req.key === key(i)),
				Boolean,
				120_000
			);
			await liveReplicas(2);
			const killedOwner = await killOwner(run.id);
			// The killed replica has exited: a request that arrives from now on comes from another one (which may send
			// it before the takeover is seen below).
			const after = Date.now();
			if (killedOwner) kills++;
			await takenOver(run.id);
			// The replica that took over sends the step again, with the same key.
			if (killedOwner)
				await waitUntil(
					`step ${i + 1} sent again after the takeover`,
					async () => hook.received.some(r => r.key === key(i) && r.at >= after),
					Boolean,
					120_000
				);
			hook.releaseAll();
			await waitUntil(
				`step ${i + 1} to succeed`,
				() => stepStatus(run.id, i),
				s => s === "succeeded",
				120_000
			);
			succeededAt[i] = Date.now();
			// Step boundary: the step's success is committed; kill the replica before or as it starts the next one.
			await liveReplicas(2);
			if (await killOwner(run.id)) kills++;
			if (i < STEPS - 1) await takenOver(run.id);
		}
		hook.holding = false;
		hook.releaseAll();
		const done = await waitUntil(
			"the run to complete",
			() => call("execution-runs.get", { id: run.id }),
			(d: any) => d.run.status === "completed",
			120_000
		);

		expect(done.run).toMatchObject({ outcome: "succeeded", done: STEPS });
		expect(done.steps.map((s: any) => s.status)).toEqual(Array(STEPS).fill("succeeded"));
		// Every step's effect applied exactly once, in plan order.
		expect(hook.applied).toEqual(Array.from({ length: STEPS }, (_, i) => key(i)));
		// A completed step was never run again.
		for (let i = 0; i < STEPS; i++)
			expect([i, hook.received.filter(r => r.key === key(i) && r.at > succeededAt[i]).length]).toEqual([i, 0]);
		// Each step was resumed by another replica after the kill in its middle.
		for (const s of done.steps)
			expect([
				s.position,
				s.logs.some((l: any) => /resumed after the replica running it stopped/.test(l.message))
			]).toEqual([s.position, true]);
		expect(kills).toBeGreaterThanOrEqual(2 * STEPS - 1);
		// One planning.plan.executed for the run, whatever the kills.
		const executed = async () =>
			(
				await pool.query<{ payload: any }>(
					"SELECT payload FROM outbox WHERE payload->>'type' = $1 AND payload->>'runId' = $2",
					["planning.plan.executed", run.id]
				)
			).rows.map(r => r.payload.status);
		await waitUntil("planning.plan.executed", executed, s => s.length > 0, 60_000);
		expect(await executed()).toEqual(["success"]);
	}, 900_000);
});
