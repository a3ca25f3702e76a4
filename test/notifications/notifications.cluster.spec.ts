// The in-app channel across processes over real RabbitMQ: an event written to the outbox is relayed to ai.events,
// consumed by the notifications node (consumer group "notifications", declared through consumesAll) and pushed to
// the user's open tabs on BOTH gateway replicas, each a separate process. Two notifications replicas share the
// events: each is handled once.
import crypto from "crypto";
import pg from "pg";
import type { Socket } from "socket.io-client";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL, REDIS_URL, cleanRedis } from "../helpers/infra";
import { startNode, TEST_JWT_SECRET, TEST_TRANSIT_KEY } from "../helpers/process";
import { connect, http, Member, register } from "../helpers/gateway";
import { freePorts } from "../helpers/ports";
import { deleteRabbitObjects } from "../helpers/rabbit";
import { waitUntil } from "../helpers/wait";

jest.setTimeout(120_000);

describeWith(["postgres", "rabbitmq", "redis"])("notifications across gateway replicas (separate processes)", () => {
	const namespace = uniqueNamespace("ntf");
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let nodes: ReturnType<typeof startNode>[] = [];
	let pool: pg.Pool;
	let ports: number[];
	let owner: Member;
	const sockets: Socket[] = [];

	beforeAll(async () => {
		ports = await freePorts(2);
		db = await createTestDatabase();
		pool = new pg.Pool({ connectionString: db.url, max: 2 });
		const env = {
			TRANSPORTER: AMQP_URL,
			CACHER: REDIS_URL,
			CHANNELS_URL: AMQP_URL,
			DATABASE_URL: db.url,
			NAMESPACE: namespace,
			JWT_SECRET: TEST_JWT_SECRET,
			TRANSIT_KEY: TEST_TRANSIT_KEY
		};
		const notifications = { ...env, SERVICES: "notifications", NOTIFICATIONS_POLL_MS: "100" };
		nodes = [
			startNode({
				...env,
				SERVICES: "auth,secrets",
				MASTER_KEY: crypto.randomBytes(32).toString("base64"),
				NODE_ID: `${namespace}-core`
			}),
			startNode({ ...notifications, NODE_ID: `${namespace}-ntf-1` }),
			startNode({ ...notifications, NODE_ID: `${namespace}-ntf-2` }),
			startNode({ ...env, SERVICES: "gateway", PORT: String(ports[0]), NODE_ID: `${namespace}-gw-1` }),
			startNode({ ...env, SERVICES: "gateway", PORT: String(ports[1]), NODE_ID: `${namespace}-gw-2` })
		];
		await Promise.all(nodes.map(n => n.ready));
		for (const port of ports)
			await waitUntil(
				`gateway ${port} routes notifications`,
				() => http(port, "GET", "/api/notifications/unread-count").then(r => r.status),
				s => s === 401,
				30_000,
				250
			);
		owner = await register(ports[0], "cluster-notify@example.com");
	});

	afterAll(async () => {
		sockets.forEach(s => s.close());
		await Promise.all(nodes.map(n => n.stop("SIGKILL")));
		await pool?.end();
		await db?.drop();
		await deleteRabbitObjects([namespace]).catch(() => undefined);
		await cleanRedis(namespace);
	});

	// What a producing module does: the event in the outbox; any relay of the cluster publishes it.
	async function publish(type: string, data: Record<string, unknown>) {
		const event = { ...data, type, id: crypto.randomUUID(), time: new Date().toISOString() };
		await pool.query("INSERT INTO outbox (id, channel, payload) VALUES ($1, $2, $3)", [
			event.id,
			`${type.split(".")[0]}.events`,
			JSON.stringify(event)
		]);
		return event;
	}

	test("an in-app notification reaches the user's tabs on either gateway replica, once each", async () => {
		const tabs = await Promise.all(ports.map(port => connect(port, { token: owner.accessToken })));
		sockets.push(...tabs);
		const got: any[][] = tabs.map(() => []);
		// Receipt time per notification: the outbox-to-tab latency is printed (a figure of this run, not asserted).
		tabs.forEach((s, i) => s.on("notification", p => got[i].push({ ...p, receivedAt: Date.now() })));
		const events = [];
		for (let i = 0; i < 3; i++)
			events.push(
				await publish("ai.provider.health.changed", {
					organizationId: owner.organization.id,
					providerId: `p-${i}`,
					status: "degraded"
				})
			);
		await waitUntil(
			"three notifications on both tabs",
			async () => got.map(g => g.length),
			n => n.every(x => x >= 3)
		);
		for (const g of got) {
			expect(g.map(p => p.notification.data.id).sort()).toEqual(events.map(e => e.id).sort());
			expect(g.every(p => p.organizationId === owner.organization.id)).toBe(true);
		}
		expect(Math.max(...got.flat().map(p => p.unread))).toBe(3);
		const latency = got.map(g => g.map(p => p.receivedAt - Date.parse(p.notification.data.time)));
		process.stdout.write(
			`outbox → tab (ms), gateway 1: ${latency[0].join(", ")}; gateway 2: ${latency[1].join(", ")}\n`
		);
		// Each event was routed once across the two notifications replicas.
		const rows = await pool.query("SELECT event_id FROM notifications_inbox WHERE user_id = $1", [owner.user.id]);
		expect(rows.rowCount).toBe(3);
		const r = await http(ports[1], "GET", "/api/notifications/unread-count", {
			token: owner.accessToken,
			org: owner.organization.id
		});
		expect(r.body).toEqual({ count: 3 });
	});
});
