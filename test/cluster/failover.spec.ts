// A replica's death under a steady stream of authenticated REST reads: gateway and auth replicas as separate
// processes on RabbitMQ, Redis and PostgreSQL. The gateway runs with REQUEST_RETRIES=0, so the Retry middleware
// cannot be what saves a request: one that went to the dying replica is either taken over by another replica or it
// fails. Latency figures are bench/failover.ts's job; here no request may fail or wait out the request timeout.
import amqp from "amqplib";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { AuthCluster, authRead, openLoop, requestsHandled, startAuthCluster } from "../helpers/auth-cluster";

const REQUEST_TIMEOUT = 5000;
const RATE = 60;

describeWith(["postgres", "rabbitmq", "redis"])("a replica's death under a stream of reads through the gateway", () => {
	const NAMESPACE = uniqueNamespace("failover");
	let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
	let cluster: AuthCluster;

	// Calls of the auth reads a replica has handled (its own metrics, read from its health port).
	const handled = async (port: number) =>
		(await requestsHandled(port, "auth-teams.get")) + (await requestsHandled(port, "auth.me"));

	beforeAll(async () => {
		db = await createTestDatabase();
		cluster = await startAuthCluster({
			namespace: NAMESPACE,
			databaseUrl: db.url,
			gatewayEnv: { REQUEST_RETRIES: "0", REQUEST_TIMEOUT: String(REQUEST_TIMEOUT) }
		});
		// Both replicas take part before anything is stopped.
		await openLoop({ rate: RATE, durationMs: 1000, request: authRead(cluster) });
		for (const port of cluster.healthPorts) expect(await handled(port)).toBeGreaterThan(0);
	}, 90_000);

	afterAll(async () => {
		await cluster?.stop();
		await db?.drop();
		// Per-node queues outlive their node by 2 minutes; the shared per-action queues expire by themselves.
		const conn = await amqp.connect(AMQP_URL).catch(() => undefined);
		if (conn) {
			const ch = await conn.createChannel();
			const ids = [cluster?.gateway, ...(cluster?.replicas ?? [])].filter(Boolean).map(n => n!.nodeID);
			for (const id of ids)
				for (const kind of ["REQ", "RES", "EVENT"])
					await ch.deleteQueue(`MOL-${NAMESPACE}.${kind}.${id}`).catch(() => undefined);
			await conn.close().catch(() => undefined);
		}
	});

	function expectNoneFailedOrTimedOut(samples: { ms: number; error?: string }[]) {
		expect(samples.filter(s => s.error).map(s => s.error)).toEqual([]);
		// No request waited out the request timeout (with retries off it would have failed, so this is a second look).
		expect(samples.filter(s => s.ms >= REQUEST_TIMEOUT)).toEqual([]);
	}

	test("SIGTERM of one of two replicas: it exits 0 and no request fails", async () => {
		const [a, b] = cluster.replicas;
		const before = await handled(cluster.healthPorts[1]);
		const { samples, atResult } = await openLoop({
			rate: RATE,
			durationMs: 4000,
			request: authRead(cluster),
			atMs: 1000,
			at: () => a.stop("SIGTERM")
		});

		expect(atResult).toBe(0);
		expect(a.output()).toContain("SIGTERM received");
		expectNoneFailedOrTimedOut(samples);
		expect(samples.length).toBe(RATE * 4);
		// The other replica answered what the stopped one no longer took: at least every read made after the signal.
		const afterSignal = samples.filter(s => s.start > 1000).length;
		expect((await handled(cluster.healthPorts[1])) - before).toBeGreaterThanOrEqual(afterSignal);
		expect(b.proc.exitCode).toBeNull();
	}, 60_000);

	test("kill -9 of one of two replicas: no request fails or waits out the timeout", async () => {
		const [, b] = cluster.replicas;
		await cluster.addReplica();
		// b and c both take reads (the shared queue hands them out as soon as c consumes it).
		await openLoop({ rate: RATE, durationMs: 1000, request: authRead(cluster) });
		const port = cluster.healthPorts[1];
		const bBefore = await handled(port);
		let bAtKill = 0;

		const { samples } = await openLoop({
			rate: RATE,
			durationMs: 4000,
			request: authRead(cluster),
			atMs: 1000,
			at: async () => {
				bAtKill = await handled(port);
				await b.stop("SIGKILL");
			}
		});

		expect(b.proc.signalCode).toBe("SIGKILL");
		expectNoneFailedOrTimedOut(samples);
		expect(samples.length).toBe(RATE * 4);
		// b was taking reads of this stream when it was killed.
		expect(bAtKill).toBeGreaterThan(bBefore);
		expect(cluster.replicas[2].proc.exitCode).toBeNull();
	}, 60_000);
});
