// Two mcp replicas in separate processes over RabbitMQ, sharing PostgreSQL and Redis: a per-tool rate limit is
// exact over both (counted in Redis), and concurrent health checks on both replicas publish exactly one
// health.changed per transition (the row lock in recordHealth).
import crypto from "crypto";
import amqp from "amqplib";
import pg from "pg";
import { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, uniqueNamespace, cleanRedis, AMQP_URL, REDIS_URL } from "../helpers/infra";
import { deleteRabbitObjects } from "../helpers/rabbit";
import { startNode, TEST_JWT_SECRET, TEST_TRANSIT_KEY } from "../helpers/process";
import { as } from "../helpers/broker";
import { waitUntil } from "../helpers/wait";
import { loadConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";
import { TestMcpHttpServer } from "./http-server";
import { TINY } from "./stack";

type NodeProcess = ReturnType<typeof startNode>;
const TOKEN = "tok-cluster-5e1f0a";
const MASTER_KEY = crypto.randomBytes(32).toString("base64");

describeWith(["postgres", "rabbitmq", "redis"])("mcp across two replicas", () => {
	const NAMESPACE = uniqueNamespace("mcp");
	const ID = NAMESPACE.split("-")[1];
	const CALLER_ID = `caller-${ID}`;
	let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
	let sql: pg.Client;
	const nodes: NodeProcess[] = [];
	let r1: NodeProcess, r2: NodeProcess;
	let caller: ServiceBroker;
	let admin: any;
	const http = new TestMcpHttpServer(TOKEN);

	const env = () => ({
		TRANSPORTER: AMQP_URL,
		CHANNELS_URL: AMQP_URL,
		REDIS_URL,
		DATABASE_URL: db!.url,
		NAMESPACE,
		JWT_SECRET: TEST_JWT_SECRET,
		TRANSIT_KEY: TEST_TRANSIT_KEY,
		MCP_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
		MCP_HEALTH_INTERVAL_MS: "0",
		MCP_REFRESH_INTERVAL_MS: "0",
		MCP_HEALTH_FAILURES: "2"
	});
	const on = (node: NodeProcess) => ({ ...as(admin), nodeID: node.nodeID });
	const outbox = async (type: string) =>
		(await sql.query("SELECT payload FROM outbox WHERE payload->>'type' = $1", [type])).rows.map(r => r.payload);

	beforeAll(async () => {
		await http.start();
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		nodes.push(startNode({ ...env(), SERVICES: "auth,secrets", MASTER_KEY, NODE_ID: `auth-${ID}` }));
		r1 = startNode({ ...env(), SERVICES: "mcp", NODE_ID: `mcp-1-${ID}` });
		r2 = startNode({ ...env(), SERVICES: "mcp", NODE_ID: `mcp-2-${ID}` });
		nodes.push(r1, r2);
		await Promise.all(nodes.map(n => n.ready));
		caller = new ServiceBroker({
			...brokerOptions(loadConfig({ ...env(), NODE_ID: CALLER_ID, LOG_LEVEL: "warn" })),
			logger: false
		});
		await caller.start();
		await caller.waitForServices(["auth", "mcp", "mcp-servers"], 30_000);
		const both = JSON.stringify([r1.nodeID, r2.nodeID].sort());
		await waitUntil(
			"mcp.call on both replicas",
			async () =>
				((caller as any).registry.getActionEndpoints("mcp.call")?.endpoints ?? [])
					.filter((ep: any) => ep.isAvailable)
					.map((ep: any) => ep.id)
					.sort(),
			ids => JSON.stringify(ids) === both
		);
		const reg: any = await caller.call("auth.register", {
			email: "mcp-replicas@example.com",
			password: "correct horse battery",
			name: "Replicas"
		});
		admin = await caller.call("auth.resolve", { token: reg.accessToken, organizationId: reg.organization.id });
	}, 120_000);

	afterAll(async () => {
		await caller?.stop().catch(() => undefined);
		await Promise.all(nodes.map(n => n.stop("SIGTERM")));
		await sql?.end();
		await db?.drop();
		await http.stop();
		await cleanRedis(NAMESPACE);
		// Its channel queues too: RabbitMQ keeps files open for every queue left behind.
		await deleteRabbitObjects([NAMESPACE]).catch(() => undefined);
		const conn = await amqp.connect(AMQP_URL).catch(() => undefined);
		if (conn) {
			const ch = await conn.createChannel();
			for (const id of [CALLER_ID, ...nodes.map(n => n.nodeID)])
				for (const kind of ["REQ", "RES", "EVENT"])
					await ch.deleteQueue(`MOL-${NAMESPACE}.${kind}.${id}`).catch(() => undefined);
			await conn.close().catch(() => undefined);
		}
	});

	test("a per-tool limit of 10 a minute admits exactly 10 of 30 concurrent calls spread over both replicas", async () => {
		await caller.call(
			"mcp-servers.create",
			{ name: "tiny", transport: "stdio", command: process.execPath, args: [TINY], tool_calls_per_minute: 10 },
			on(r1)
		);
		const outcomes = await Promise.all(
			Array.from({ length: 30 }, (_, i) =>
				caller
					.call<any, any>(
						"mcp.call",
						{ server: "tiny", tool: "echo", arguments: { message: `m${i}` } },
						on(i % 2 ? r1 : r2)
					)
					.then(
						() => 200,
						(err: any) => err.code
					)
			)
		);
		expect(outcomes.filter(c => c === 200).length).toBe(10);
		expect(outcomes.filter(c => c === 429).length).toBe(20);
		const events = await waitUntil(
			"20 rate-limit events",
			() => outbox("mcp.server.rate_limit.exceeded"),
			l => l.length === 20
		);
		expect(new Set(events.map(e => e.tool))).toEqual(new Set(["echo"]));
	});

	test("concurrent health checks on both replicas: exactly one health.changed per transition", async () => {
		await caller.call(
			"secrets.create",
			{ environment: "production", name: "MCP_TOKEN", value: `Bearer ${TOKEN}` },
			as(admin)
		);
		const s: any = await caller.call(
			"mcp-servers.create",
			{
				name: "calc",
				transport: "http",
				url: `${http.url}/mcp`,
				headers: { Authorization: { secret: "MCP_TOKEN" } }
			},
			on(r2)
		);
		expect(s.last_error).toBeNull();
		const check = (i: number) => caller.call("mcp-servers.check", { id: s.id }, on(i % 2 ? r1 : r2));
		await Promise.all(Array.from({ length: 6 }, (_, i) => check(i)));
		http.down = true;
		await Promise.all(Array.from({ length: 8 }, (_, i) => check(i)));
		http.down = false;
		await Promise.all(Array.from({ length: 8 }, (_, i) => check(i)));
		const changes = (await outbox("mcp.server.health.changed")).filter(e => e.serverId === s.id);
		expect(changes.map(e => `${e.from}->${e.to}`).sort()).toEqual(
			["unknown->healthy", "healthy->unhealthy", "unhealthy->healthy"].sort()
		);
		const checks = (
			await sql.query("SELECT count(*)::int AS n FROM mcp_health_checks WHERE server_id = $1", [s.id])
		).rows[0];
		expect(checks.n).toBe(22);
	});
});
