// A bad or unreachable setting stops start-up with one line that names the variable: no stack trace, no hang.
import { loadConfig, ConfigError } from "../../lib/config";
import { startNode } from "../helpers/process";

describe("configuration", () => {
	test.each([
		[{ TRANSPORTER: "http://rabbit" }, "TRANSPORTER"],
		[{ CACHER: "memcached://x" }, "CACHER"],
		[{ DATABASE_URL: "not a url" }, "DATABASE_URL"],
		[{ PORT: "eighty" }, "PORT"],
		[{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
		[{ SERVICES: "auth,Bad Name" }, "SERVICES"],
		[{ TRANSPORTER: "amqp://127.0.0.1" }, "JWT_SECRET"],
		[{ JWT_SECRET: "short" }, "JWT_SECRET"],
		[{ TRANSPORTER: "amqp://127.0.0.1", JWT_SECRET: "j".repeat(32) }, "TRANSIT_KEY"],
		[{ TRANSIT_KEY: "short" }, "TRANSIT_KEY"],
		[{ AI_ALLOWED_PRIVATE_HOSTS: "10.0.0.0/33" }, "AI_ALLOWED_PRIVATE_HOSTS"],
		[{ AI_ALLOWED_PRIVATE_HOSTS: "localhost, http://127.0.0.1:11434" }, "AI_ALLOWED_PRIVATE_HOSTS"],
		[{ AI_LOG_BATCH_MS: "-1" }, "AI_LOG_BATCH_MS"],
		[{ AI_LOG_BATCH_MS: "soon" }, "AI_LOG_BATCH_MS"],
		[{ METRICS_TOKEN: "short" }, "METRICS_TOKEN"],
		[{ SOCKETS_PER_USER: "0" }, "SOCKETS_PER_USER"],
		[{ HEAP_GROWING_PERCENT: "-5" }, "HEAP_GROWING_PERCENT"]
	])("%j is refused naming %s", (env, variable) => {
		let error: unknown;
		try {
			loadConfig({ DATA_DIR: "/tmp/cide-config-test", ...env });
		} catch (err) {
			error = err;
		}
		expect(error).toBeInstanceOf(ConfigError);
		expect((error as ConfigError).variable).toBe(variable);
		expect((error as ConfigError).message.startsWith(`${variable}: `)).toBe(true);
	});

	test("defaults are the embedded platform", () => {
		const c = loadConfig({ DATA_DIR: "/tmp/cide-config-test" });
		expect(c).toMatchObject({
			mode: "embedded",
			services: "all",
			port: 3000,
			// A laptop's platform is not on its LAN unless asked (containers set HOST=0.0.0.0).
			host: "127.0.0.1",
			transporterUrl: undefined,
			databaseUrl: undefined,
			cacherUrl: undefined,
			heapGrowingPercent: 0
		});
		// AI providers reach public hosts only, embedded too: local models are allowed explicitly.
		expect(c.modules.ai).toEqual({
			allowedPrivateHosts: [],
			logBatchMs: 200,
			agentRunsPerOrganization: 10,
			agentRunsPerReplica: 20,
			agentRunLeaseMs: 30_000,
			agentRunPollMs: 2000
		});
		const hosts = loadConfig({
			DATA_DIR: "/tmp/cide-config-test",
			AI_ALLOWED_PRIVATE_HOSTS: "localhost:11434, 10.0.0.0/8"
		});
		expect(hosts.modules.ai.allowedPrivateHosts).toEqual([
			{ kind: "name", name: "localhost", port: 11434 },
			{ kind: "range", address: "10.0.0.0", prefix: 8 }
		]);
	});

	// Closed ports on loopback: each process must exit by itself with one clear line.
	test.each([
		[{ TRANSPORTER: "amqp://guest:hunter2secret@127.0.0.1:1" }, "TRANSPORTER"],
		[{ CHANNELS_URL: "amqp://127.0.0.1:1" }, "CHANNELS_URL"],
		[{ CACHER: "redis://127.0.0.1:1" }, "CACHER"],
		[{ DATABASE_URL: "postgres://postgres:hunter2secret@127.0.0.1:1/coder_ide" }, "DATABASE_URL"],
		[{ SERVICES: "auth,warp-drive" }, "SERVICES"]
	])(
		"unreachable %j stops start-up naming %s",
		async (env, variable) => {
			const node = startNode({ DATA_DIR: "/tmp/cide-config-test", PORT: "0", ...env }, { waitUp: false });
			const code = await node.exited;
			const lines = node.output().trim().split("\n");
			expect(code).toBe(1);
			expect(lines).toHaveLength(1);
			expect(lines[0]).toMatch(new RegExp(`^Start-up failed: ${variable}: `));
			expect(node.output()).not.toContain("hunter2secret");
			expect(node.output()).not.toMatch(/\n\s+at /);
		},
		30_000
	);
});
