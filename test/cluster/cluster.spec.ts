// The auth module as separate node processes over real RabbitMQ: load balancing between replicas, a graceful SIGTERM
// and a SIGKILL in the middle of a stream of calls. The caller is a service-less broker in this process, built from the
// platform's own broker options (moleculer.config.ts), as the gateway would be.
import { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { startNode, NodeProcess, TEST_JWT_SECRET } from "../helpers/process";
import { as } from "../helpers/broker";
import { loadConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";

// Which replica served a call. With Moleculer's built-in balancer the caller picks the endpoint and sends the request
// to that node's own queue (MOL-<namespace>.REQ.<nodeID>), which only that node consumes; so the ctx.nodeID a
// `remoteAction` hook of the caller sees on an attempt that got an answer is the node that executed it. User
// middlewares sit inside the Retry middleware, so every attempt (first call or retry) is recorded on its own.
// The first test cross-checks this record against health.live, whose answer carries the executing node's ID.
interface Attempt {
	action: string;
	nodeID: string;
	started: number;
	ended: number;
	ok: boolean;
	error?: string;
}
const attempts: Attempt[] = [];
const ServedBy = {
	name: "ServedBy",
	remoteAction(next: (ctx: any) => Promise<any>, action: any) {
		return (ctx: any) => {
			const started = Date.now();
			const nodeID = ctx.nodeID;
			return next(ctx).then(
				(res: any) => {
					attempts.push({ action: action.name, nodeID, started, ended: Date.now(), ok: true });
					return res;
				},
				(err: any) => {
					attempts.push({ action: action.name, nodeID, started, ended: Date.now(), ok: false, error: err?.name });
					throw err;
				}
			);
		};
	}
};

const countBy = (list: Attempt[]) => list.reduce<Record<string, number>>((acc, a) => ((acc[a.nodeID] = (acc[a.nodeID] ?? 0) + 1), acc), {});
const delay = (ms: number) => new Promise(r => setTimeout(r, ms));

describeWith(["postgres", "rabbitmq", "redis"])("auth replicas as separate processes over RabbitMQ", () => {
	const NAMESPACE = uniqueNamespace("cluster");
	const ID = NAMESPACE.split("-")[1];
	let dbUrl: string;
	let drop: (() => Promise<void>) | undefined;
	const nodes: NodeProcess[] = [];
	let caller: ServiceBroker;
	let auth: any;
	let team: any;
	let user: any;

	const nodeEnv = (nodeID: string) => ({ SERVICES: "auth", TRANSPORTER: AMQP_URL, DATABASE_URL: dbUrl, NAMESPACE, NODE_ID: nodeID, LOG_LEVEL: "info" });
	const replica = (name: string) => {
		const n = startNode(nodeEnv(`${name}-${ID}`));
		nodes.push(n);
		return n;
	};

	// The nodes the caller's registry currently lists as available for an action.
	const endpointsOf = (action: string): string[] =>
		((caller as any).registry.getActionEndpoints(action)?.endpoints ?? [])
			.filter((ep: any) => ep.isAvailable)
			.map((ep: any) => ep.id)
			.sort();
	// Synchronisation, not an assertion: bounded wait until the caller's registry shows exactly these nodes.
	async function waitForEndpoints(nodeIDs: string[], timeoutMs = 20_000) {
		const want = [...nodeIDs].sort();
		const deadline = Date.now() + timeoutMs;
		for (const action of ["auth.me", "teams.get", "teams.update", "health.live"]) {
			while (JSON.stringify(endpointsOf(action)) !== JSON.stringify(want)) {
				if (Date.now() > deadline) throw new Error(`caller sees ${action} on [${endpointsOf(action)}], expected [${want}]`);
				await delay(50);
			}
		}
	}

	// `concurrency` loops calling reads (and some writes) until `durationMs` has passed; `during` runs alongside.
	// Every call's outcome is checked: a rejected call, or an answer about the wrong user or team, is a failure.
	async function stream(opts: { concurrency: number; durationMs: number; writes: boolean }, during: () => Promise<void>) {
		const deadline = Date.now() + opts.durationMs;
		const failures: string[] = [];
		const calls: { started: number; ended: number; action: string }[] = [];
		let writes = 0;
		const loop = async (i: number) => {
			for (let j = 0; j < 100_000 && Date.now() < deadline; j++) {
				const started = Date.now();
				let action = j % 2 ? "auth.me" : "teams.get";
				if (opts.writes && j % 5 === 4) action = "teams.update";
				try {
					if (action === "auth.me") {
						const me: any = await caller.call("auth.me", {}, as(auth));
						if (me.user.id !== user.id) failures.push(`auth.me answered for ${me.user.id}`);
					} else if (action === "teams.get") {
						const t: any = await caller.call("teams.get", { id: team.id }, as(auth));
						if (t.id !== team.id) failures.push(`teams.get answered ${t.id}`);
					} else {
						const t: any = await caller.call("teams.update", { id: team.id, description: `loop ${i} call ${j}` }, as(auth));
						if (t.description !== `loop ${i} call ${j}`) failures.push(`teams.update returned "${t.description}"`);
						writes++;
					}
				} catch (err: any) {
					failures.push(`${action}: ${err.name} ${err.message}`);
				}
				calls.push({ started, ended: Date.now(), action });
			}
		};
		await Promise.all([...Array.from({ length: opts.concurrency }, (_, i) => loop(i)), during()]);
		return { failures, calls, writes };
	}

	beforeAll(async () => {
		const db = await createTestDatabase();
		dbUrl = db.url;
		drop = db.drop;
		const a = replica("auth-a");
		const b = replica("auth-b");
		await Promise.all([a.ready, b.ready]);

		const config = loadConfig({ TRANSPORTER: AMQP_URL, NAMESPACE, NODE_ID: `caller-${ID}`, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "warn" });
		const options = brokerOptions(config);
		caller = new ServiceBroker({ ...options, logger: false, middlewares: [ServedBy as any, ...(options.middlewares ?? [])] });
		await caller.start();
		await caller.waitForServices(["auth", "teams"], 20_000);
		await waitForEndpoints([a.nodeID, b.nodeID]);

		const reg: any = await caller.call("auth.register", { email: "cluster@example.com", password: "correct horse battery", name: "Cluster" });
		user = reg.user;
		auth = await caller.call("auth.resolve", { token: reg.accessToken, organizationId: reg.organization.id });
		team = await caller.call("teams.create", { name: "Replicas", description: "served by whichever node" }, as(auth));
	}, 60_000);

	afterAll(async () => {
		await caller?.stop().catch(() => undefined);
		// Every child dies, whatever happened in the tests.
		await Promise.all(nodes.map(n => n.stop("SIGKILL")));
		await drop?.();
	});

	test("calls are balanced over both replicas", async () => {
		const [a, b] = nodes;
		// The probe of which node served a call is sound: for each health.live answer, the node it names is the one
		// the caller sent the request to.
		attempts.length = 0;
		for (let i = 0; i < 20; i++) {
			const p: any = caller.call("health.live");
			const live: any = await p;
			expect(live.nodeID).toBe(p.ctx.nodeID);
			expect([a.nodeID, b.nodeID]).toContain(live.nodeID);
		}
		expect(attempts.map(x => x.nodeID)).toEqual(attempts.map(x => x.nodeID).filter(id => id === a.nodeID || id === b.nodeID));

		// 200 real auth reads, 20 at a time.
		attempts.length = 0;
		const N = 200;
		for (let batch = 0; batch < N / 20; batch++) {
			const results = await Promise.all(
				Array.from({ length: 20 }, (_, i) =>
					i % 2 ? caller.call<any, any>("auth.me", {}, as(auth)) : caller.call<any, any>("teams.get", { id: team.id }, as(auth))
				)
			);
			results.forEach((r, i) => expect(i % 2 ? r.user.id : r.id).toBe(i % 2 ? user.id : team.id));
		}
		expect(attempts).toHaveLength(N);
		expect(attempts.every(x => x.ok)).toBe(true);
		const served = countBy(attempts);
		expect(Object.keys(served).sort()).toEqual([a.nodeID, b.nodeID].sort());
		expect(served[a.nodeID]).toBeGreaterThanOrEqual(N * 0.25);
		expect(served[b.nodeID]).toBeGreaterThanOrEqual(N * 0.25);
	});

	test("SIGTERM on one replica in the middle of a stream of reads and writes: no call fails, it exits 0", async () => {
		const [a, b] = nodes;
		attempts.length = 0;
		let sigtermAt = 0;
		let exitedAt = 0;
		let exitCode: number | null = -1;
		const { failures, calls, writes } = await stream({ concurrency: 50, durationMs: 4000, writes: true }, async () => {
			await delay(1000);
			sigtermAt = Date.now();
			exitCode = await b.stop("SIGTERM");
			exitedAt = Date.now();
		});

		expect(failures).toEqual([]);
		expect(exitCode).toBe(0);
		expect(b.output()).toContain("SIGTERM received");
		expect(exitedAt).toBeGreaterThan(sigtermAt);
		// The stopping node said goodbye: the caller dropped it at once, without waiting for a heartbeat timeout.
		expect(endpointsOf("teams.get")).toEqual([a.nodeID]);
		// Both replicas served before the signal; after the stopped one exited, the survivor served every call.
		expect(countBy(attempts.filter(x => x.ok && x.ended < sigtermAt))).toEqual({ [a.nodeID]: expect.any(Number), [b.nodeID]: expect.any(Number) });
		const after = attempts.filter(x => x.started > exitedAt);
		expect(after.length).toBeGreaterThan(100);
		expect(after.every(x => x.ok && x.nodeID === a.nodeID)).toBe(true);
		expect(writes).toBeGreaterThan(50);
		expect(calls.filter(c => c.started > exitedAt).length).toBeGreaterThan(100);
		const retried = attempts.filter(x => !x.ok);
		// eslint-disable-next-line no-console
		console.log(`SIGTERM: ${calls.length} calls (${writes} writes), ${retried.length} retried attempts, stop took ${exitedAt - sigtermAt} ms`);
	});

	test("SIGKILL on one replica in the middle of a stream of reads: the retry policy hides it, the survivor serves", async () => {
		const [a] = nodes;
		const c = replica("auth-c");
		await c.ready;
		await waitForEndpoints([a.nodeID, c.nodeID]);

		attempts.length = 0;
		let killedAt = 0;
		const { failures, calls } = await stream({ concurrency: 50, durationMs: 4000, writes: false }, async () => {
			await delay(1000);
			killedAt = Date.now();
			await a.stop("SIGKILL");
		});

		expect(a.proc.signalCode).toBe("SIGKILL");
		expect(failures).toEqual([]);
		expect(countBy(attempts.filter(x => x.ok && x.ended < killedAt))).toEqual({ [a.nodeID]: expect.any(Number), [c.nodeID]: expect.any(Number) });
		const after = attempts.filter(x => x.ok && x.started > killedAt);
		expect(after.length).toBeGreaterThan(100);
		expect(after.every(x => x.nodeID === c.nodeID)).toBe(true);
		expect(calls.filter(x => x.started > killedAt).length).toBeGreaterThan(100);
		const retried = attempts.filter(x => !x.ok);
		const slowest = Math.max(...calls.map(x => x.ended - x.started));
		// eslint-disable-next-line no-console
		console.log(`SIGKILL: ${calls.length} calls, ${retried.length} failed attempts retried (${[...new Set(retried.map(x => x.error))]}), slowest call ${slowest} ms`);
	});
});
