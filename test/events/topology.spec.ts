// Who declares a consumer group's queue: the consuming module, in its manifest (services/<module>/<module>.module.ts),
// read by every producer whatever modules its own process runs. Proven with the demo fixtures as separate processes
// started in the worst order, on real RabbitMQ and PostgreSQL.
import fs from "fs";
import os from "os";
import path from "path";
import pg from "pg";
import { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { startNode, TEST_JWT_SECRET, TEST_TRANSIT_KEY } from "../helpers/process";
import { ROOT } from "../helpers/broker";
import { deleteRabbitObjects, queueDepth, queueExists, withAmqp } from "../helpers/rabbit";
import { Fatal, waitUntil } from "../helpers/wait";
import { loadConfig, setConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";
import { consumerGroupsOf, loadManifests, moduleNames, SERVICES_DIR } from "../../lib/module";
import { serviceFiles } from "../../lib/node";
import { EventsMixin } from "../../mixins/events.mixin";
import type { ServiceSchema } from "../../lib/schema";
import { DEMO_TABLES_SQL, DEMO_CHANNEL, DEMO_GROUP, FAILING_GROUP } from "../fixtures/services/demo-groups";

jest.setTimeout(90_000);

const FIXTURES_DIR = path.join(ROOT, "test/fixtures/services");

// A services dir of throwaway modules: { folder: { file: content } }.
function servicesDir(modules: Record<string, Record<string, string>>): string {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-modules-"));
	for (const [mod, files] of Object.entries(modules)) {
		fs.mkdirSync(path.join(dir, mod));
		for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, mod, file), content);
	}
	return dir;
}
const manifestJs = (m: object) => `module.exports = { default: ${JSON.stringify(m)} };`;
const manifestOf = (name: string, fields: object) =>
	manifestJs({ name, description: "d", publishes: [], consumes: [], ...fields });
const tmpDirs: string[] = [];
afterAll(() => tmpDirs.forEach(d => fs.rmSync(d, { recursive: true, force: true })));

describe("module manifests", () => {
	test("every module folder declares itself, and each group consuming a channel is found whoever loads it", () => {
		const platform = loadManifests(SERVICES_DIR);
		expect(platform.map(m => m.name)).toEqual(moduleNames(SERVICES_DIR));
		expect(platform.find(m => m.name === "ai")).toMatchObject({ publishes: ["ai.events"], tablePrefix: "ai_" });

		const fixtures = loadManifests(FIXTURES_DIR);
		expect(fixtures.map(m => m.name)).toEqual(moduleNames(FIXTURES_DIR));
		expect(consumerGroupsOf(fixtures, DEMO_CHANNEL).sort()).toEqual([DEMO_GROUP, FAILING_GROUP].sort());
		expect(consumerGroupsOf(fixtures, "ai.events")).toEqual([]);
		expect(loadManifests(FIXTURES_DIR)).toBe(fixtures); // read once per process
	});

	test("a manifest is never loaded as a service", () => {
		const files = serviceFiles(loadConfig({ SERVICES: "demo-consumer,demo-producer", SERVICES_DIR: FIXTURES_DIR }));
		expect(files.map(f => path.relative(FIXTURES_DIR, f))).toEqual([
			"demo-consumer/demo-consumer.service.ts",
			"demo-producer/demo-producer.service.ts"
		]);
	});

	test.each([
		["a module folder without a manifest", { x: { "x.service.js": "" } }, /x\/x\.module\.ts: missing/],
		[
			"a manifest named unlike its folder",
			{ x: { "x.module.js": manifestOf("y", {}) } },
			/name must be "x" \(its folder\), got "y"/
		],
		[
			"a channel that is not a name",
			{ x: { "x.module.js": manifestOf("x", { publishes: ["x events"] }) } },
			/channel "x events" is not a name like "x.events"/
		],
		[
			"consuming a channel no module publishes",
			{
				p: { "p.module.js": manifestOf("p", { publishes: ["p.events"] }) },
				x: { "x.module.js": manifestOf("x", { consumes: [{ channel: "nope.events", group: "x" }] }) }
			},
			/x: consumes nope\.events, which no module publishes \(published: p\.events\)/
		],
		[
			"two modules consuming a channel as one group",
			{
				p: { "p.module.js": manifestOf("p", { publishes: [DEMO_CHANNEL] }) },
				...Object.fromEntries(
					["a", "b"].map(name => [
						name,
						{
							[`${name}.module.js`]: manifestOf(name, {
								consumes: [{ channel: DEMO_CHANNEL, group: "g" }]
							})
						}
					])
				)
			},
			/demo\.events as group "g" is already consumed by module "a"/
		]
	])("%s is refused", (_what, modules, message) => {
		const dir = servicesDir(modules);
		tmpDirs.push(dir);
		expect(() => loadManifests(dir)).toThrow(message);
	});

	test("consumesAll reads every channel the other modules publish, a module added later included", () => {
		const modules: Record<string, Record<string, string>> = {
			a: { "a.module.js": manifestOf("a", { publishes: ["a.events"] }) },
			b: { "b.module.js": manifestOf("b", { publishes: ["b.events"] }) },
			n: { "n.module.js": manifestOf("n", { publishes: ["n.events"], consumesAll: { group: "n" } }) }
		};
		const dir = servicesDir(modules);
		tmpDirs.push(dir);
		const manifests = loadManifests(dir);
		expect(manifests.find(m => m.name === "n")!.consumes).toEqual([
			{ channel: "a.events", group: "n" },
			{ channel: "b.events", group: "n" }
		]);
		// Producers declare its queue on their channels, and none on its own (it would read what it writes).
		expect(consumerGroupsOf(manifests, "a.events")).toEqual(["n"]);
		expect(consumerGroupsOf(manifests, "n.events")).toEqual([]);
		const later = servicesDir({ ...modules, c: { "c.module.js": manifestOf("c", { publishes: ["c.events"] }) } });
		tmpDirs.push(later);
		expect(consumerGroupsOf(loadManifests(later), "c.events")).toEqual(["n"]);
		expect(() =>
			loadManifests(servicesDir({ x: { "x.module.js": manifestOf("x", { consumesAll: { group: "X Y" } }) } }))
		).toThrow(/consumesAll: group "X Y" is not a name/);

		// A service's `channels: { "*": … }` becomes one consumer per channel of its group, as its module declares.
		setConfig(loadConfig({ SERVICES_DIR: later, LOG_LEVEL: "fatal" }));
		const broker = new ServiceBroker({ ...brokerOptions(), logger: false });
		const handler = () => undefined;
		const svc = broker.createService({
			name: "n",
			mixins: [EventsMixin],
			channels: { "*": { group: "n", handler } }
		} as ServiceSchema);
		expect(Object.keys((svc.schema as ServiceSchema).channels ?? {}).sort()).toEqual([
			"a.events",
			"b.events",
			"c.events"
		]);
		expect(() =>
			broker.createService({
				name: "m",
				mixins: [EventsMixin],
				channels: { "*": { group: "m", handler } }
			} as ServiceSchema)
		).toThrow(/consumes "\*" as group "m", which no module declares/);
	});

	test("the notifications module consumes every platform channel but its own", () => {
		const platform = loadManifests(SERVICES_DIR);
		const own = platform.find(m => m.name === "notifications")!;
		const others = platform.filter(m => m.name !== "notifications").flatMap(m => m.publishes);
		expect(own.consumes.map(c => c.channel).sort()).toEqual([...new Set(others)].sort());
		expect(own.consumes.every(c => c.group === "notifications")).toBe(true);
	});

	test("a consumer that belongs to no module folder does not start", async () => {
		setConfig(loadConfig({ SERVICES_DIR: FIXTURES_DIR, LOG_LEVEL: "fatal" }));
		const broker = new ServiceBroker({ ...brokerOptions(), logger: false });
		const channels = { [DEMO_CHANNEL]: () => undefined };
		const schema: ServiceSchema = { name: "stray", mixins: [EventsMixin], channels };
		broker.createService(schema);
		try {
			await expect(broker.start()).rejects.toThrow(
				`Service "stray" consumes demo.events but was not loaded from a module folder in ${FIXTURES_DIR}`
			);
		} finally {
			await broker.stop().catch(() => undefined);
		}
	});
});

describeWith(["postgres", "rabbitmq"])("consumer groups declared by the consuming module (separate processes)", () => {
	const ns = uniqueNamespace("evt");
	const nodes: ReturnType<typeof startNode>[] = [];
	let caller: ServiceBroker | undefined;
	let pool: pg.Pool;
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	const sql = async <T = any>(text: string, params?: unknown[]) =>
		(await pool.query(text, params as any[])).rows as T[];

	const env = (): Record<string, string> => ({
		NAMESPACE: ns,
		TRANSPORTER: AMQP_URL,
		CHANNELS_URL: AMQP_URL,
		DATABASE_URL: db.url,
		JWT_SECRET: TEST_JWT_SECRET,
		TRANSIT_KEY: TEST_TRANSIT_KEY,
		SERVICES_DIR: FIXTURES_DIR
	});
	const spawn = (name: string, services: string, extra: Record<string, string> = {}) => {
		const node = startNode({ ...env(), NODE_ID: `${ns}-${name}`, SERVICES: services, ...extra });
		node.ready.catch(() => undefined); // awaited below; a failure must not also surface as unhandled
		nodes.push(node);
		return node;
	};
	const assertAlive = (...procs: ReturnType<typeof startNode>[]) => {
		for (const n of procs)
			if (n.proc.exitCode !== null || n.proc.signalCode !== null)
				throw new Fatal(`node ${n.nodeID} exited. Output:\n${n.output().slice(-4000)}`);
	};

	beforeAll(async () => {
		db = await createTestDatabase();
		pool = new pg.Pool({ connectionString: db.url, max: 3 });
		pool.on("error", () => undefined);
		await pool.query(DEMO_TABLES_SQL);
	});

	afterAll(async () => {
		await caller?.stop().catch(() => undefined);
		for (const n of nodes) {
			const force = setTimeout(() => n.proc.kill("SIGKILL"), 5000);
			await n.stop();
			clearTimeout(force);
		}
		await deleteRabbitObjects([ns]).catch(err => console.warn("RabbitMQ clean-up failed:", err.message));
		await pool?.end().catch(() => undefined);
		await db?.drop().catch(err => console.warn("database clean-up failed:", err.message));
	});

	test("a producer started alone relays N events; the consumer module, started only then, handles all N once", async () => {
		const N = 40;
		const queue = `${DEMO_GROUP}.${ns}.${DEMO_CHANNEL}`;
		expect(await queueExists(queue)).toBe(false); // a fresh namespace: nothing declared yet

		// The producer's process runs only the producing module: no consumer's code is loaded there.
		const producer = spawn("producer", "demo-producer");
		await producer.ready;
		// At start, before any event, it declares the queues of the channels its manifest `publishes` to.
		await waitUntil(
			"the producer to declare the group's queue",
			() => queueExists(queue),
			ok => ok,
			10_000
		);
		const callerEnv = { ...env(), CHANNELS_URL: "", NODE_ID: `${ns}-caller`, LOG_LEVEL: "warn" };
		const options = brokerOptions(loadConfig(callerEnv));
		caller = new ServiceBroker({ ...options, logger: false });
		await caller.start();
		await caller.waitForServices(["demo-producer"], 30_000);
		// Half one by one, half written by one transaction: the relay sends a pass's events of a channel as one
		// message, so the second half waits in the queue as a single message.
		const relayed = (n: number) =>
			waitUntil(
				"the outbox rows to be relayed",
				() => (assertAlive(producer), sql("SELECT count(published_at)::int AS n FROM outbox")),
				r => r[0].n === n,
				30_000
			);
		for (let i = 0; i < N / 2; i++)
			await caller.call("demo-producer.create", { title: `early-${i}`, stream: "worst-order" });
		await relayed(N / 2);
		await caller.call("demo-producer.createMany", { stream: "worst-order", count: N / 2 });

		// Every event is relayed (RabbitMQ confirmed it) while no consumer has ever run...
		await relayed(N);
		expect(await sql("SELECT count(*)::int AS total FROM outbox")).toEqual([{ total: N }]);
		// ...and waits in the queue of each group any module declares, loaded in this process or not: each event once,
		// the transaction's twenty as the last message (read without acking: they stay there).
		const waiting = async (q: string) =>
			withAmqp(async ch => {
				const bodies: unknown[] = [];
				for (let m = await ch.get(q, { noAck: false }); m; m = await ch.get(q, { noAck: false }))
					bodies.push(JSON.parse(m.content.toString()));
				return bodies;
			});
		const idsOf = (bodies: unknown[]) =>
			bodies.flatMap(b => (Array.isArray(b) ? b : [b])).map(e => (e as { id: string }).id);
		for (const q of [queue, `${FAILING_GROUP}.${ns}.${DEMO_CHANNEL}`]) {
			const bodies = await waitUntil(
				`the events to wait in ${q}`,
				() => waiting(q),
				b => idsOf(b).length >= N,
				5_000
			);
			const ids = idsOf(bodies);
			expect(ids).toHaveLength(N);
			expect(new Set(ids).size).toBe(N);
			expect(bodies.length).toBeLessThanOrEqual(N / 2 + 1);
			expect(bodies.at(-1)).toHaveLength(N / 2);
		}
		expect(await sql("SELECT event_id FROM demo_handled")).toEqual([]);

		const consumer = spawn("consumer", "demo-consumer");
		await consumer.ready;
		await waitUntil(
			`all ${N} events to be handled`,
			() => (assertAlive(producer, consumer), sql("SELECT count(DISTINCT event_id)::int AS n FROM demo_handled")),
			r => r[0].n === N,
			30_000
		);
		await waitUntil(
			"the group's queue to drain",
			() => queueDepth(queue),
			n => n === 0,
			10_000
		);
		// Exactly once: one handling per event, each one an event the producer wrote, all by the new consumer.
		const handled = await sql<{ event_id: string; node_id: string }>("SELECT event_id, node_id FROM demo_handled");
		const produced = await sql<{ event_id: string }>(
			"SELECT event_id FROM demo_articles WHERE stream = 'worst-order'"
		);
		expect(handled).toHaveLength(N);
		expect(new Set(handled.map(h => h.event_id))).toEqual(new Set(produced.map(p => p.event_id)));
		expect(new Set(handled.map(h => h.node_id))).toEqual(new Set([consumer.nodeID]));
	});

	test("a service consuming with a group its module does not declare is refused at start-up, before any queue", async () => {
		const imports = (to: string) => JSON.stringify(path.join(ROOT, to));
		const dir = servicesDir({
			rogue: {
				"rogue.module.ts": `import { defineModule } from ${imports("lib/module")};
export default defineModule({ name: "rogue", description: "declares nothing", publishes: [], consumes: [] });`,
				"rogue.service.ts": `import { EventsMixin } from ${imports("mixins/events.mixin")};
export default { name: "rogue", mixins: [EventsMixin], channels: { "${DEMO_CHANNEL}": () => undefined } };`
			}
		});
		tmpDirs.push(dir);
		const node = spawn("rogue", "rogue", { SERVICES_DIR: dir });
		expect(await node.exited).toBe(1);
		expect(node.output()).toContain(
			`Start-up failed: Service "rogue" consumes demo.events as group "rogue", which module "rogue" does not ` +
				`declare: add { channel: "demo.events", group: "rogue" } to consumes in ${dir}/rogue/rogue.module.ts`
		);
		expect(await queueExists(`rogue.${ns}.${DEMO_CHANNEL}`)).toBe(false);
	});
});
