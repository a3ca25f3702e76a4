// Operating a cluster node: per-process health and metrics endpoints, and `npm run repl` joining the cluster.
import { execFileSync } from "child_process";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { startNode, TEST_JWT_SECRET, TEST_TRANSIT_KEY } from "../helpers/process";
import { ROOT } from "../helpers/broker";
import { freePort } from "../helpers/ports";

let HEALTH_PORT = 0;

async function until<T>(fn: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const v = await fn();
		if (ok(v) || Date.now() > deadline) return v;
		await new Promise(r => setTimeout(r, 200));
	}
}

describeWith(["postgres", "rabbitmq"])("operating a cluster node", () => {
	const namespace = uniqueNamespace("ops");
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let node: ReturnType<typeof startNode>;
	let env: Record<string, string>;
	const session = `cide-repl-${process.pid}`;

	beforeAll(async () => {
		HEALTH_PORT = await freePort();
		db = await createTestDatabase();
		env = {
			TRANSPORTER: AMQP_URL,
			DATABASE_URL: db.url,
			NAMESPACE: namespace,
			JWT_SECRET: TEST_JWT_SECRET,
			TRANSIT_KEY: TEST_TRANSIT_KEY
		};
		node = startNode({ ...env, SERVICES: "auth", HEALTH_PORT: String(HEALTH_PORT), NODE_ID: "ops-auth-1" });
		await node.ready;
	}, 60_000);

	afterAll(async () => {
		try {
			execFileSync("tmux", ["kill-session", "-t", session], { stdio: "ignore" });
		} catch {
			/* not running */
		}
		await node?.stop("SIGKILL");
		await db?.drop();
	});

	test("the health port answers liveness, readiness and Prometheus metrics", async () => {
		const live = await fetch(`http://127.0.0.1:${HEALTH_PORT}/health`);
		expect(live.status).toBe(200);
		expect(await live.json()).toMatchObject({ status: "ok", nodeID: "ops-auth-1" });
		const ready = await fetch(`http://127.0.0.1:${HEALTH_PORT}/ready`);
		expect(ready.status).toBe(200);
		expect((await ready.json()).checks).toMatchObject({ database: { ok: true }, transporter: { ok: true } });
		const metrics = await (await fetch(`http://127.0.0.1:${HEALTH_PORT}/metrics`)).text();
		expect(metrics).toMatch(/moleculer_request_total|moleculer_broker_nodes_total|process_cpu_utilization/);
		expect(metrics).toContain('nodeID="ops-auth-1"');
	});

	test("traffic between nodes is encrypted: a node with another TRANSIT_KEY cannot talk to the cluster", async () => {
		const { ServiceBroker } = await import("moleculer");
		const { loadConfig } = await import("../../lib/config");
		const { brokerOptions } = await import("../../moleculer.config");
		const make = (key: string, id: string) =>
			new ServiceBroker({
				...brokerOptions(loadConfig({ ...env, TRANSIT_KEY: key, SERVICES: "" })),
				nodeID: id,
				logger: false
			});
		const intruder = make("another-transit-key-another-transit-key", `${namespace}-intruder`);
		const member = make(TEST_TRANSIT_KEY, `${namespace}-member`);
		await Promise.all([intruder.start(), member.start()]);
		try {
			await member.waitForServices(["auth"], 10_000);
			expect(await member.call("health.live", {}, { nodeID: "ops-auth-1" })).toMatchObject({
				nodeID: "ops-auth-1"
			});
			await expect(intruder.waitForServices(["auth"], 3000)).rejects.toThrow();
		} finally {
			await Promise.all([intruder.stop(), member.stop()]);
		}
	}, 30_000);

	test("npm run repl joins the running cluster and runs the platform commands", async () => {
		const envArgs = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
		execFileSync("tmux", [
			"new-session",
			"-d",
			"-s",
			session,
			"-x",
			"200",
			"-y",
			"50",
			"-c",
			ROOT,
			...envArgs,
			"npm run repl"
		]);
		const screen = () => execFileSync("tmux", ["capture-pane", "-p", "-t", session, "-S", "-200"]).toString();
		expect(await until(screen, s => /mol \$/.test(s))).toMatch(/mol \$/);
		execFileSync("tmux", ["send-keys", "-t", session, "health", "Enter"]);
		const afterHealth = await until(screen, s => /ops-auth-1\s+ready\s+database=ok/.test(s));
		expect(afterHealth).toMatch(/ops-auth-1\s+ready\s+database=ok transporter=ok/);
		execFileSync("tmux", ["send-keys", "-t", session, "migrations", "Enter"]);
		const migrations = await until(screen, s => /platform\/0001_identity_and_event_tables/.test(s));
		expect(migrations).toMatch(/platform\/0001_identity_and_event_tables\s+\d{4}-/);
		execFileSync("tmux", [
			"send-keys",
			"-t",
			session,
			"call auth.login --email nobody@example.com --password wrongwrongwrong",
			"Enter"
		]);
		expect(await until(screen, s => /invalid email or password/.test(s))).toMatch(/invalid email or password/);
	}, 60_000);
});
