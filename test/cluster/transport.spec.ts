// What the cluster transport (lib/transporter.ts) promises about a request, with replicas as separate processes on
// real RabbitMQ: a request that a replica was running when it was killed is run by another one; one for an action
// that must run at most once is never run twice; one that waited in the queue past its caller's timeout is never run; a
// node whose connection to RabbitMQ dropped consumes its queues again once reconnected, and requests wait for it.
// The caller is a platform broker in this process with retries off, so nothing here is the Retry middleware's doing.
import amqp from "amqplib";
import { Errors, ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { startNode, NodeProcess, TEST_JWT_SECRET, TEST_TRANSIT_KEY } from "../helpers/process";
import { loadConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";
import { waitUntil } from "../helpers/wait";

type Node = NodeProcess & { ready: Promise<void> };

describeWith(["postgres", "rabbitmq"])("the cluster transport's delivery of requests", () => {
	const NAMESPACE = uniqueNamespace("transport");
	const ID = NAMESPACE.split("-")[1];
	let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
	let caller: ServiceBroker;
	const nodes: Node[] = [];

	const env = () => ({
		TRANSPORTER: AMQP_URL,
		DATABASE_URL: db!.url,
		NAMESPACE,
		JWT_SECRET: TEST_JWT_SECRET,
		TRANSIT_KEY: TEST_TRANSIT_KEY
	});
	const replica = async (name: string, extra: Record<string, string> = {}) => {
		const n = startNode({
			...env(),
			SERVICES_DIR: "test/fixtures/services",
			SERVICES: "slow-work",
			NODE_ID: `${name}-${ID}`,
			...extra
		});
		nodes.push(n);
		await n.ready;
		return n;
	};
	const live = () => nodes.filter(n => n.proc.exitCode === null && n.proc.signalCode === null);
	const started = (n: Node, key: string) => n.output().includes(`started ${key}\n`);
	const endpointsOf = (action: string): string[] =>
		((caller as any).registry.getActionEndpoints(action)?.endpoints ?? []).map((ep: any) => ep.id);
	// Synchronisation, not an assertion: polls `done` for at most 30 s.
	async function until(done: () => boolean) {
		for (let i = 0; i < 600 && !done(); i++) await new Promise(r => setTimeout(r, 50));
		if (!done()) throw new Error("condition not reached within 30 s");
	}
	// SIGKILL for whichever live replica starts `key`, as soon as it prints so.
	async function killWhoeverStarts(key: string): Promise<Node> {
		const candidates = live();
		await Promise.race(candidates.map(n => n.waitFor(new RegExp(`started ${key}\\n`), 20_000)));
		const victim = candidates.find(n => started(n, key))!;
		await victim.stop("SIGKILL");
		return victim;
	}

	beforeAll(async () => {
		db = await createTestDatabase();
		await Promise.all([replica("work-a"), replica("work-b")]);
		const config = loadConfig({ ...env(), NODE_ID: `caller-${ID}`, REQUEST_RETRIES: "0", LOG_LEVEL: "warn" });
		const options = brokerOptions(config);
		caller = new ServiceBroker({ ...options, logger: false });
		await caller.start();
		await caller.waitForServices(["slow-work"], 20_000);
	}, 60_000);

	afterAll(async () => {
		await caller?.stop().catch(() => undefined);
		await Promise.all(nodes.map(n => n.stop("SIGKILL")));
		await db?.drop();
		const conn = await amqp.connect(AMQP_URL).catch(() => undefined);
		if (conn) {
			const ch = await conn.createChannel();
			for (const id of [`caller-${ID}`, `echo-${ID}`, ...nodes.map(n => n.nodeID)])
				for (const kind of ["REQ", "RES", "EVENT"])
					await ch.deleteQueue(`MOL-${NAMESPACE}.${kind}.${id}`).catch(() => undefined);
			for (const action of ["slow-work.again", "slow-work.once", "echo.hit"])
				await ch.deleteQueue(`MOL-${NAMESPACE}.REQB.${action}`).catch(() => undefined);
			await conn.close().catch(() => undefined);
		}
	});

	test("a request the killed replica was running is run again by another replica, and answered", async () => {
		const call = caller.call<any, any>("slow-work.again", { key: "k1", ms: 1500 });
		const victim = await killWhoeverStarts("k1");

		const res = await call;
		expect(res.key).toBe("k1");
		expect(res.nodeID).not.toBe(victim.nodeID);
		// Its stdout line can be read here after the answer came back over AMQP.
		await live()[0].waitFor(/started k1\n/, 10_000);
	}, 60_000);

	test("an at-most-once call dies with the killed replica, never runs twice, and does not hang", async () => {
		await replica("work-c");
		// Such calls go to a node the caller picks: wait until the caller has dropped the node killed before.
		const alive = () =>
			live()
				.map(n => n.nodeID)
				.sort()
				.join();
		await until(() => endpointsOf("slow-work.once").sort().join() === alive());
		// No timeout, as the platform calls an `external` action: only the node's death can end this call.
		const call = caller.call("slow-work.once", { key: "k2", ms: 1000 }, { timeout: 0 });
		const victim = await killWhoeverStarts("k2");

		// Rejected once the caller drops the dead node (missed heartbeats), not handed to the other replica.
		await expect(call).rejects.toBeInstanceOf(Errors.RequestRejectedError);
		const [other] = live();
		expect(other.nodeID).not.toBe(victim.nodeID);
		expect(started(other, "k2")).toBe(false);
	}, 60_000);

	test("a request that waited in the queue past its caller's timeout is dropped, not run late", async () => {
		// One replica taking one request at a time, busy with a long one.
		await Promise.all(live().map(n => n.stop("SIGTERM")));
		const w = await replica("work-d", { TRANSPORTER_PREFETCH: "1" });
		await caller.waitForServices(["slow-work"], 20_000);
		const busy = caller.call("slow-work.again", { key: "k3-busy", ms: 2000 });
		await w.waitFor(/started k3-busy\n/);

		const late = caller.call("slow-work.again", { key: "k3", ms: 0 }, { timeout: 500 });
		await expect(late).rejects.toBeInstanceOf(Errors.RequestTimeoutError);
		await busy;
		// The queue is first in, first out: had k3 still been there, w would have started it before k4.
		await caller.call("slow-work.again", { key: "k4", ms: 0 });
		// The answer can come back over AMQP before the replica's stdout line is read here.
		await w.waitFor(/started k4\n/, 10_000);
		expect(started(w, "k3")).toBe(false);
	}, 60_000);

	test("a node whose RabbitMQ connection dropped consumes its queues again, says at once it is alive, and a request waits for it", async () => {
		// An in-process node, so that its socket can be cut: RabbitMQ sees the connection die as it would on a network
		// fault or a broker restart, and the node reconnects by itself (after Moleculer's 5 s back-off).
		const config = loadConfig({ ...env(), NODE_ID: `echo-${ID}`, LOG_LEVEL: "warn" });
		const node = new ServiceBroker({ ...brokerOptions(config), logger: false });
		node.createService({ name: "echo", actions: { hit: { visibility: "public", handler: () => node.nodeID } } });
		await node.start();
		try {
			await caller.waitForServices(["echo"], 20_000);
			expect(await caller.call("echo.hit")).toBe(node.nodeID);

			// Its timers stopped (Moleculer starts them again on reconnecting), the only heartbeat the caller can get
			// from it is the one sent on reconnecting.
			const discoverer = (node as any).registry.discoverer;
			discoverer.stopHeartbeatTimers();
			const heartbeats = jest.spyOn((caller as any).registry.discoverer, "heartbeatReceived");
			const fromNode = () => heartbeats.mock.calls.filter(([nodeID]) => nodeID === node.nodeID).length;

			const tx: any = (node as any).transit.tx;
			const reconnected = new Promise(resolve =>
				node.localBus.once("$transporter.connected", () => resolve(discoverer.stopHeartbeatTimers()))
			);
			tx.connection.connection.stream.destroy(new Error("cut by the test"));
			// Sent while the node is away: it waits in the shared queue instead of failing.
			const during = caller.call("echo.hit", {}, { timeout: 20_000 });
			await reconnected;
			expect(await during).toBe(node.nodeID);
			expect(await caller.call("echo.hit")).toBe(node.nodeID);
			await waitUntil(
				"the reconnected node's heartbeat",
				async () => fromNode(),
				n => n > 0,
				5_000
			);

			// Exactly one consumer: the one of the dead channel is gone, and the re-subscription made no second one.
			const conn = await amqp.connect(AMQP_URL);
			const ch = await conn.createChannel();
			const q = await ch.checkQueue(`MOL-${NAMESPACE}.REQB.echo.hit`);
			await conn.close();
			expect(q.consumerCount).toBe(1);
		} finally {
			jest.restoreAllMocks();
			await node.stop();
		}
	}, 60_000);

	test("a node whose channel RabbitMQ closed reconnects instead of staying connected but deaf", async () => {
		const config = loadConfig({ ...env(), NODE_ID: `deaf-${ID}`, LOG_LEVEL: "warn" });
		const node = new ServiceBroker({ ...brokerOptions(config), logger: false });
		node.createService({ name: "deaf", actions: { hit: { visibility: "public", handler: () => node.nodeID } } });
		await node.start();
		try {
			await caller.waitForServices(["deaf"], 20_000);
			expect(await caller.call("deaf.hit")).toBe(node.nodeID);

			const tx: any = (node as any).transit.tx;
			const before = tx.channel;
			const reconnected = new Promise(resolve => node.localBus.once("$transporter.connected", resolve));
			// A channel error: RabbitMQ closes the channel (404 NOT_FOUND) and leaves the connection open.
			await expect(before.checkQueue(`MOL-${NAMESPACE}.no-such-queue`)).rejects.toThrow(/404/);
			// Sent while the node is away: it waits in the shared queue, and the node takes it once back.
			const during = caller.call("deaf.hit", {}, { timeout: 20_000 });
			await reconnected;
			expect(tx.channel).not.toBe(before);
			expect(await during).toBe(node.nodeID);
			expect(await caller.call("deaf.hit")).toBe(node.nodeID);
		} finally {
			await node.stop();
		}
	}, 60_000);
});
