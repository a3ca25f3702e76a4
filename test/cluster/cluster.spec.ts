// The auth module as separate node processes over real RabbitMQ: load balancing between replicas, a graceful SIGTERM
// and a SIGKILL in the middle of a stream of calls. The caller is a service-less broker in this process built from the
// platform's own broker options (moleculer.config.ts), as a gateway node would be, with the production request
// timeout (10 s) and retry policy: nothing here is tuned for the test.
import amqp from "amqplib";
import { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { startNode, NodeProcess, TEST_JWT_SECRET, TEST_TRANSIT_KEY } from "../helpers/process";
import { as } from "../helpers/broker";
import { loadConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";

// Which replica served a call. Requests go to one RabbitMQ queue per action that every replica consumes
// (lib/transporter.ts), so the caller does not pick the node: Moleculer writes the sender of the response into
// ctx.nodeID, which a `remoteAction` hook of the caller reads once the answer is in (an attempt that got no answer
// has no node). User middlewares sit inside the Retry middleware, so each attempt (first try or retry) is recorded
// on its own. The first test cross-checks this record against health.live, whose answer names the node that ran it.
interface Attempt {
	nodeID: string | null;
	started: number;
	ended: number;
	ok: boolean;
	error?: string;
}
const attempts: Attempt[] = [];
const ServedBy = {
	name: "ServedBy",
	remoteAction(next: (ctx: any) => Promise<any>) {
		return (ctx: any) => {
			const started = Date.now();
			return next(ctx).then(
				(res: any) => {
					attempts.push({ nodeID: ctx.nodeID, started, ended: Date.now(), ok: true });
					return res;
				},
				(err: any) => {
					attempts.push({ nodeID: null, started, ended: Date.now(), ok: false, error: err?.name });
					throw err;
				}
			);
		};
	}
};

function countBy(list: Attempt[]) {
	const counts: Record<string, number> = {};
	for (const { nodeID } of list) counts[String(nodeID)] = (counts[String(nodeID)] ?? 0) + 1;
	return counts;
}
const delay = (ms: number) => new Promise(r => setTimeout(r, ms));

describeWith(["postgres", "rabbitmq", "redis"])("auth replicas as separate processes over RabbitMQ", () => {
	const NAMESPACE = uniqueNamespace("cluster");
	const ID = NAMESPACE.split("-")[1];
	const CALLER_ID = `caller-${ID}`;
	let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
	const nodes: NodeProcess[] = [];
	let caller: ServiceBroker;
	let auth: any;
	let team: any;
	let user: any;

	const env = () => ({
		TRANSPORTER: AMQP_URL,
		DATABASE_URL: db!.url,
		NAMESPACE,
		JWT_SECRET: TEST_JWT_SECRET,
		TRANSIT_KEY: TEST_TRANSIT_KEY
	});
	const replica = (name: string) => {
		const n = startNode({ ...env(), SERVICES: "auth", NODE_ID: `${name}-${ID}` });
		nodes.push(n);
		return n;
	};

	// The nodes the caller's registry lists as available for an action.
	const endpointsOf = (action: string): string[] =>
		((caller as any).registry.getActionEndpoints(action)?.endpoints ?? [])
			.filter((ep: any) => ep.isAvailable)
			.map((ep: any) => ep.id)
			.sort();
	// Synchronisation, not an assertion: bounded wait until the caller's registry shows exactly these nodes.
	async function waitForEndpoints(nodeIDs: string[], timeoutMs = 20_000) {
		const want = JSON.stringify([...nodeIDs].sort());
		const deadline = Date.now() + timeoutMs;
		for (const action of ["auth.me", "auth-teams.get", "auth-teams.update", "health.live"])
			while (JSON.stringify(endpointsOf(action)) !== want) {
				if (Date.now() > deadline)
					throw new Error(`caller sees ${action} on [${endpointsOf(action)}], expected ${want}`);
				await delay(50);
			}
	}
	// Resolves with the time the caller dropped `nodeID` from its registry, and whether it went without a goodbye.
	const dropped = (nodeID: string) =>
		new Promise<{ at: number; unexpected: boolean }>(resolve => {
			const handler = (e: any) => {
				if (e.node.id !== nodeID) return;
				(caller as any).localBus.off("$node.disconnected", handler);
				resolve({ at: Date.now(), unexpected: e.unexpected });
			};
			(caller as any).localBus.on("$node.disconnected", handler);
		});

	// `concurrency` loops of calls (reads, and with `writes` every fifth call a teams.update) that start new calls until
	// `done()` says so or `maxMs` has passed; `during` runs alongside. Every call is checked: a rejected call, or an
	// answer about another user or team, is a failure.
	async function stream(
		opts: { concurrency: number; maxMs: number; done: () => boolean; writes: boolean },
		during: () => Promise<void>
	) {
		const hardStop = Date.now() + opts.maxMs;
		const failures: string[] = [];
		const calls: { started: number; ended: number }[] = [];
		let writes = 0;
		const loop = async (i: number) => {
			for (let j = 0; j < 100_000 && !opts.done() && Date.now() < hardStop; j++) {
				const started = Date.now();
				const action = opts.writes && j % 5 === 4 ? "auth-teams.update" : j % 2 ? "auth.me" : "auth-teams.get";
				try {
					if (action === "auth.me") {
						const me: any = await caller.call("auth.me", {}, as(auth));
						if (me.user.id !== user.id) failures.push(`auth.me answered for ${me.user.id}`);
					} else if (action === "auth-teams.get") {
						const t: any = await caller.call("auth-teams.get", { id: team.id }, as(auth));
						if (t.id !== team.id) failures.push(`auth-teams.get answered ${t.id}`);
					} else {
						const description = `loop ${i} call ${j}`;
						const t: any = await caller.call("auth-teams.update", { id: team.id, description }, as(auth));
						if (t.description !== description)
							failures.push(`auth-teams.update returned "${t.description}"`);
						writes++;
					}
				} catch (err: any) {
					failures.push(`${action}: ${err.name}: ${err.message}`);
				}
				calls.push({ started, ended: Date.now() });
			}
		};
		const [side] = await Promise.allSettled([
			during(),
			...Array.from({ length: opts.concurrency }, (_, i) => loop(i))
		]);
		if (side.status === "rejected") throw side.reason;
		return { failures, calls, writes };
	}

	beforeAll(async () => {
		db = await createTestDatabase();
		const [a, b] = [replica("auth-a"), replica("auth-b")];
		await Promise.all([a.ready, b.ready]);

		const options = brokerOptions(loadConfig({ ...env(), NODE_ID: CALLER_ID, LOG_LEVEL: "warn" }));
		caller = new ServiceBroker({
			...options,
			logger: false,
			middlewares: [ServedBy as any, ...(options.middlewares ?? [])]
		});
		await caller.start();
		await caller.waitForServices(["auth", "auth-teams"], 20_000);
		await waitForEndpoints([a.nodeID, b.nodeID]);

		const reg: any = await caller.call("auth.register", {
			email: "cluster@example.com",
			password: "correct horse battery",
			name: "Cluster"
		});
		user = reg.user;
		auth = await caller.call("auth.resolve", { token: reg.accessToken, organizationId: reg.organization.id });
		team = await caller.call(
			"auth-teams.create",
			{ name: "Replicas", description: "served by whichever node" },
			as(auth)
		);
	}, 60_000);

	afterAll(async () => {
		await caller?.stop().catch(() => undefined);
		// Every child dies, whatever happened in the tests.
		await Promise.all(nodes.map(n => n.stop("SIGKILL")));
		await db?.drop();
		// The per-node queues outlive their consumers for a while (Moleculer declares them with a 2-minute expiry).
		const conn = await amqp.connect(AMQP_URL).catch(() => undefined);
		if (conn) {
			const ch = await conn.createChannel();
			for (const id of [CALLER_ID, ...nodes.map(n => n.nodeID)])
				for (const kind of ["REQ", "RES", "EVENT"])
					await ch.deleteQueue(`MOL-${NAMESPACE}.${kind}.${id}`).catch(() => undefined);
			await conn.close().catch(() => undefined);
		}
	});

	test("calls are balanced over both replicas", async () => {
		const [a, b] = nodes;
		// The served-by record is sound: for each health.live call, the node named in the answer is the node recorded.
		attempts.length = 0;
		const named: string[] = [];
		for (let i = 0; i < 20; i++) named.push(((await caller.call("health.live")) as any).nodeID);
		expect(attempts.map(x => x.nodeID)).toEqual(named);
		expect(new Set(named)).toEqual(new Set([a.nodeID, b.nodeID]));

		// 200 real auth reads, 20 at a time, each answer checked.
		attempts.length = 0;
		const N = 200;
		for (let batch = 0; batch < N / 20; batch++) {
			const results = await Promise.all(
				Array.from({ length: 20 }, (_, i) =>
					i % 2
						? caller.call<any, any>("auth.me", {}, as(auth))
						: caller.call<any, any>("auth-teams.get", { id: team.id }, as(auth))
				)
			);
			expect(results.map((r, i) => (i % 2 ? r.user.id : r.id))).toEqual(
				results.map((_, i) => (i % 2 ? user.id : team.id))
			);
		}
		expect(attempts).toHaveLength(N);
		expect(attempts.every(x => x.ok)).toBe(true);
		const served = countBy(attempts);
		expect(Object.keys(served).sort()).toEqual([a.nodeID, b.nodeID].sort());
		expect(served[a.nodeID]).toBeGreaterThanOrEqual(N * 0.25);
		expect(served[b.nodeID]).toBeGreaterThanOrEqual(N * 0.25);
	});

	test("SIGTERM on one replica during a stream of reads and writes: no call fails, it exits 0, the other serves", async () => {
		const [a, b] = nodes;
		attempts.length = 0;
		const gone = dropped(b.nodeID);
		let sigtermAt = 0;
		let exitedAt = 0;
		let exitCode: number | null = -1;
		const start = Date.now();
		const { failures, writes } = await stream(
			// Until 1.5 s after the stopped replica exited (a loaded host can take seconds to stop it), at least 4 s.
			{
				concurrency: 50,
				maxMs: 30_000,
				done: () => exitedAt > 0 && Date.now() > Math.max(start + 4000, exitedAt + 1500),
				writes: true
			},
			async () => {
				await delay(1000);
				sigtermAt = Date.now();
				exitCode = await b.stop("SIGTERM");
				exitedAt = Date.now();
			}
		);

		expect(failures).toEqual([]);
		// Not even an attempt failed: the stopping node took no request it would have refused, so none was retried.
		expect(attempts.filter(x => !x.ok)).toEqual([]);
		expect(exitCode).toBe(0);
		expect(b.output()).toContain("SIGTERM received");
		// The stopping node said goodbye: the caller dropped it as a clean disconnect, not by a missed heartbeat.
		const drop = await Promise.race([
			gone,
			delay(5000).then(() => ({ at: 0, unexpected: "never dropped" as any }))
		]);
		expect(drop.unexpected).toBe(false);
		expect(drop.at).toBeLessThan(exitedAt + 1000);
		expect(endpointsOf("auth-teams.get")).toEqual([a.nodeID]);
		// Both replicas served before the signal; every call made after the stopped one exited was served by the other.
		expect(Object.keys(countBy(attempts.filter(x => x.ok && x.ended < sigtermAt))).sort()).toEqual(
			[a.nodeID, b.nodeID].sort()
		);
		const after = attempts.filter(x => x.started > exitedAt);
		expect(after.length).toBeGreaterThan(100);
		expect(after.every(x => x.ok && x.nodeID === a.nodeID)).toBe(true);
		expect(writes).toBeGreaterThan(50);
	});

	test("SIGKILL on one replica during a stream of reads: the other takes over, no call is retried", async () => {
		const [a] = nodes;
		const c = replica("auth-c");
		await c.ready;
		await waitForEndpoints([a.nodeID, c.nodeID]);

		attempts.length = 0;
		const gone = dropped(a.nodeID);
		let drop: { at: number; unexpected: boolean } | undefined;
		gone.then(d => (drop = d));
		let killedAt = 0;
		let exitedAt = 0;
		// Calls keep starting until 1.5 s after the caller has dropped the dead node (at most 30 s).
		const { failures } = await stream(
			{ concurrency: 50, maxMs: 30_000, done: () => !!drop && Date.now() > drop.at + 1500, writes: false },
			async () => {
				await delay(1000);
				killedAt = Date.now();
				await a.stop("SIGKILL");
				exitedAt = Date.now();
			}
		);

		expect(a.proc.signalCode).toBe("SIGKILL");
		expect(failures).toEqual([]);
		// RabbitMQ gave the requests the dead node held to c as soon as its connection closed: no attempt failed, so
		// none was retried, and none waited for the caller to notice the death (which it did later, by heartbeats).
		expect(attempts.filter(x => !x.ok)).toEqual([]);
		expect(drop).toBeDefined();
		expect(drop!.unexpected).toBe(true);
		// With the heartbeat settings of moleculer.config.ts (Moleculer's defaults took 30-60 s).
		expect(drop!.at - killedAt).toBeLessThan(20_000);
		expect(endpointsOf("auth-teams.get")).toEqual([c.nodeID]);

		const beforeKill = attempts.filter(x => x.ended < killedAt);
		expect(Object.keys(countBy(beforeKill)).sort()).toEqual([a.nodeID, c.nodeID].sort());
		const afterKill = attempts.filter(x => x.started > exitedAt);
		expect(afterKill.length).toBeGreaterThan(100);
		expect(afterKill.every(x => x.nodeID === c.nodeID)).toBe(true);
		// Most of the stream ran while the caller still listed the dead node: it did not matter.
		expect(afterKill.filter(x => x.started < drop!.at).length).toBeGreaterThan(50);
	}, 60_000);
});
