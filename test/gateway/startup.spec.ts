// The gateway while its node is still starting: the port is open (the UI is served) before the node's other services
// have started and before the route table exists. Readiness must say 503 and what is missing, never 404; the route
// table is logged once, when the node is up.
import path from "path";
import util from "util";
import { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { AUTH_FILES, GATEWAY_FILE, http } from "../helpers/gateway";
import { ROOT } from "../helpers/broker";
import { loadConfig, setConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";
import { HealthService } from "../../lib/health";
import { acquireDb, releaseDb } from "../../lib/db";
import { SafeConsoleLogger } from "../../lib/log-safe";

describeWith(["postgres"])("gateway start-up (in-process node, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	beforeAll(async () => {
		db = await createTestDatabase();
	});
	afterAll(() => db.drop());

	test("readiness answers 503 naming the service still starting, then 200; the route table is logged once", async () => {
		const lines: string[] = [];
		const spies = (["log", "info", "warn", "error"] as const).map(m =>
			jest.spyOn(console, m).mockImplementation((...args: unknown[]) => void lines.push(util.format(...args)))
		);
		const config = loadConfig({
			JWT_SECRET: "test-secret-test-secret-test-secret-0123",
			DATABASE_URL: db.url,
			PORT: "0",
			HOST: "127.0.0.1",
			LOG_LEVEL: "info"
		});
		setConfig(config);
		await acquireDb();
		const logger = new SafeConsoleLogger({
			level: "info",
			formatter: "short",
			colors: false,
			write: line => void lines.push(line.trimEnd())
		});
		const broker = new ServiceBroker({ ...brokerOptions(config), logger });
		// A service of this node that is slow to start (as one waiting for its dependencies is).
		let release!: () => void;
		const gate = new Promise<void>(resolve => (release = resolve));
		broker.createService(HealthService);
		broker.createService({ name: "slowpoke", started: () => gate });
		for (const f of [...AUTH_FILES, "services/gateway/health.service.ts", GATEWAY_FILE])
			broker.loadService(path.resolve(ROOT, f));
		const starting = broker.start();
		try {
			const gateway: any = broker.getLocalService("gateway");
			for (let i = 0; i < 200 && !gateway.server?.listening; i++) await new Promise(r => setTimeout(r, 50));
			expect(gateway.server.listening).toBe(true);
			const port = gateway.server.address().port;

			const early = await http(port, "GET", "/api/health/ready");
			expect(early.status).toBe(503);
			expect(early.body.status).toBe("not ready");
			expect(early.body.checks.services).toEqual({ ok: false, error: expect.stringContaining("slowpoke") });
			// Any other API call is told to come back, not that its endpoint does not exist.
			const me = await http(port, "GET", "/api/auth/me");
			expect(me.status).toBe(503);
			expect(me.headers.get("retry-after")).toBe("1");

			release();
			await starting;
			const ready = await http(port, "GET", "/api/health/ready");
			expect(ready.status).toBe(200);
			expect(ready.body.checks.services).toEqual({ ok: true });
			expect((await http(port, "GET", "/api/auth/me")).status).toBe(401);

			// moleculer-web regenerates 500 ms after services change: that must not print the table again.
			await new Promise(r => setTimeout(r, 800));
			const routeLines = lines.filter(l => /GET \/api\/health\/ready => healthz\.ready/.test(l));
			expect(routeLines).toHaveLength(1);
			expect(lines.filter(l => /Routes \(\d+\):/.test(l))).toHaveLength(1);
		} finally {
			release();
			await starting.catch(() => undefined);
			await broker.stop();
			await releaseDb();
			for (const spy of spies) spy.mockRestore();
		}
	}, 60_000);
});
