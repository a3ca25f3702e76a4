// Two auth replicas (separate processes over RabbitMQ) sharing one Redis cache: cached reads live in Redis under the
// namespace's prefix, one entry per organization, and a write on one replica is seen by a read on the other at once.
// Calls are pinned to a replica with the `nodeID` calling option, because which replica does what is the point here.
import amqp from "amqplib";
import Redis from "ioredis";
import { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL, REDIS_URL } from "../helpers/infra";
import { startNode, TEST_JWT_SECRET, TEST_TRANSIT_KEY } from "../helpers/process";
import { as } from "../helpers/broker";
import { loadConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";

const delay = (ms: number) => new Promise(r => setTimeout(r, ms));
type NodeProcess = ReturnType<typeof startNode>;

describeWith(["postgres", "rabbitmq", "redis"])("shared Redis cache across auth replicas", () => {
	const NAMESPACE = uniqueNamespace("cache");
	const ID = NAMESPACE.split("-")[1];
	const CALLER_ID = `caller-${ID}`;
	const PREFIX = `${NAMESPACE}-cache`;
	let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
	let redis: Redis;
	const nodes: NodeProcess[] = [];
	let r1: NodeProcess, r2: NodeProcess;
	let caller: ServiceBroker;
	let orgA: { auth: any; team: any }, orgB: { auth: any; team: any };

	const env = () => ({
		TRANSPORTER: AMQP_URL,
		CACHER: REDIS_URL,
		DATABASE_URL: db!.url,
		NAMESPACE,
		JWT_SECRET: TEST_JWT_SECRET,
		TRANSIT_KEY: TEST_TRANSIT_KEY
	});
	const keys = async () => (await redis.keys(`${PREFIX}*`)).sort();
	const teamsGetKeys = async () => (await keys()).filter(k => k.includes("auth-teams.get"));
	const get = (who: { auth: any }, id: string, node: NodeProcess) =>
		caller.call<any, any>("auth-teams.get", { id }, { ...as(who.auth), nodeID: node.nodeID });

	async function member(email: string, teamName: string) {
		const reg: any = await caller.call("auth.register", {
			email,
			password: "correct horse battery",
			name: teamName
		});
		const auth = await caller.call("auth.resolve", { token: reg.accessToken, organizationId: reg.organization.id });
		const team = await caller.call("auth-teams.create", { name: teamName, description: "first" }, as(auth as any));
		return { auth, team };
	}

	beforeAll(async () => {
		db = await createTestDatabase();
		redis = new Redis(REDIS_URL);
		r1 = startNode({ ...env(), SERVICES: "auth", NODE_ID: `auth-1-${ID}` });
		r2 = startNode({ ...env(), SERVICES: "auth", NODE_ID: `auth-2-${ID}` });
		nodes.push(r1, r2);
		await Promise.all([r1.ready, r2.ready]);

		caller = new ServiceBroker({
			...brokerOptions(loadConfig({ ...env(), NODE_ID: CALLER_ID, LOG_LEVEL: "warn" })),
			logger: false
		});
		await caller.start();
		await caller.waitForServices(["auth", "auth-teams"], 20_000);
		// Synchronisation, not an assertion: bounded wait until the caller knows teams on both replicas.
		const want = JSON.stringify([r1.nodeID, r2.nodeID].sort());
		const seen = () =>
			JSON.stringify(
				((caller as any).registry.getActionEndpoints("auth-teams.get")?.endpoints ?? [])
					.filter((ep: any) => ep.isAvailable)
					.map((ep: any) => ep.id)
					.sort()
			);
		for (let i = 0; i < 400 && seen() !== want; i++) await delay(50);
		expect(seen()).toBe(want);

		orgA = await member("cache-a@example.com", "Alpha");
		orgB = await member("cache-b@example.com", "Beta");
	}, 60_000);

	afterAll(async () => {
		await caller?.stop().catch(() => undefined);
		await Promise.all(nodes.map(n => n.stop("SIGKILL")));
		await db?.drop();
		if (redis) {
			const left = await redis.keys(`${NAMESPACE}*`);
			if (left.length) await redis.del(...left);
			await redis.quit();
		}
		const conn = await amqp.connect(AMQP_URL).catch(() => undefined);
		if (conn) {
			const ch = await conn.createChannel();
			for (const id of [CALLER_ID, ...nodes.map(n => n.nodeID)])
				for (const kind of ["REQ", "RES", "EVENT"])
					await ch.deleteQueue(`MOL-${NAMESPACE}.${kind}.${id}`).catch(() => undefined);
			await conn.close().catch(() => undefined);
		}
	});

	test("a cached read lives in Redis under the namespace prefix, one entry per organization, and the other replica reads it", async () => {
		expect(await teamsGetKeys()).toEqual([]);

		// Organization A reads its team on replica 1: one entry appears, named after A's organization and the team.
		expect(await get(orgA, orgA.team.id, r1)).toMatchObject({ id: orgA.team.id, description: "first" });
		const [keyA, ...more] = await teamsGetKeys();
		expect(more).toEqual([]);
		expect(keyA.startsWith(`${PREFIX}-`)).toBe(true);
		expect(keyA).toContain(orgA.auth.organizationId);
		expect(keyA).toContain(orgA.team.id);
		const ttl = await redis.ttl(keyA);
		expect(ttl).toBeGreaterThan(0);
		expect(ttl).toBeLessThanOrEqual(300);

		// Replica 2 has never read this team. Change the entry in Redis behind the platform's back: if replica 2
		// answers with the changed value, it answered from Redis, not from its memory or the database.
		const entry = JSON.parse((await redis.get(keyA))!);
		expect(entry).toMatchObject({ id: orgA.team.id, description: "first" });
		await redis.set(keyA, JSON.stringify({ ...entry, description: "served from redis" }), "KEEPTTL");
		expect(await get(orgA, orgA.team.id, r2)).toMatchObject({ id: orgA.team.id, description: "served from redis" });

		// Organization B gets an entry of its own, and never A's entry, even when asking for A's team id.
		expect(await get(orgB, orgB.team.id, r2)).toMatchObject({ id: orgB.team.id, description: "first" });
		const after = await teamsGetKeys();
		expect(after).toHaveLength(2);
		const keyB = after.find(k => k !== keyA)!;
		expect(keyB).toContain(orgB.auth.organizationId);
		expect(keyB).not.toContain(orgA.auth.organizationId);
		expect(keyA).not.toContain(orgB.auth.organizationId);
		for (const node of [r1, r2]) {
			await expect(get(orgB, orgA.team.id, node)).rejects.toMatchObject({ code: 404 });
			await expect(get(orgA, orgB.team.id, node)).rejects.toMatchObject({ code: 404 });
		}
		// Refusals are not cached.
		expect(await teamsGetKeys()).toEqual(after);
	});

	test("a write on one replica is seen by a read on the other right after", async () => {
		for (let round = 1; round <= 10; round++) {
			const [writer, reader] = round % 2 ? [r1, r2] : [r2, r1];
			// The reader holds the current value in the cache…
			const before = await get(orgA, orgA.team.id, reader);
			expect(await teamsGetKeys()).toContainEqual(expect.stringContaining(orgA.auth.organizationId));
			// …the other replica writes…
			const description = `round ${round}, written on ${writer.nodeID}`;
			const updated: any = await caller.call(
				"auth-teams.update",
				{ id: orgA.team.id, description },
				{ ...as(orgA.auth), nodeID: writer.nodeID }
			);
			expect(updated.description).toBe(description);
			expect(before.description).not.toBe(description);
			// …and the reader's very next read has the new value.
			expect(await get(orgA, orgA.team.id, reader)).toMatchObject({ id: orgA.team.id, description });
		}
		// Organization B's team was not touched by A's writes.
		expect(await get(orgB, orgB.team.id, r1)).toMatchObject({ id: orgB.team.id, description: "first" });
	});
});
