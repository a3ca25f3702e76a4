// Real infrastructure for tests: PostgreSQL, RabbitMQ and Redis on 127.0.0.1. Without REQUIRE_INFRA=1 a missing
// service skips the tests that need it; with it (CI) the run fails instead.
import net from "net";
import crypto from "crypto";
import pg from "pg";
import Redis from "ioredis";

export const PG_ADMIN_URL = process.env.TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const AMQP_URL = process.env.TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

type Service = "postgres" | "rabbitmq" | "redis";
const PORTS: Record<Service, number> = { postgres: 5432, rabbitmq: 5672, redis: 6379 };

function reachable(port: number): Promise<boolean> {
	return new Promise(resolve => {
		const s = net.connect({ host: "127.0.0.1", port });
		s.setTimeout(1000);
		s.once("connect", () => (s.destroy(), resolve(true)));
		s.once("error", () => resolve(false));
		s.once("timeout", () => (s.destroy(), resolve(false)));
	});
}

// Call at the top of a spec file: returns `describe` or `describe.skip`. Jest needs the answer synchronously,
// so reachability is probed once by the global setup and passed in INFRA_AVAILABLE.
export function describeWith(services: Service[]): jest.Describe {
	const available = (process.env.INFRA_AVAILABLE ?? "").split(",");
	const missing = services.filter(s => !available.includes(s));
	if (!missing.length) return describe;
	if (process.env.REQUIRE_INFRA === "1")
		throw new Error(`REQUIRE_INFRA=1 but ${missing.join(", ")} not reachable on 127.0.0.1`);
	return describe.skip;
}

export async function probeInfra(): Promise<string> {
	const found: string[] = [];
	for (const [name, port] of Object.entries(PORTS)) if (await reachable(port)) found.push(name);
	return found.join(",");
}

// A fresh database per test file; dropped by the returned function.
// A throwaway database (the bench makes its own with another prefix and admin URL); drop() removes it.
export async function createTestDatabase(
	prefix = "cide_test",
	adminUrl = PG_ADMIN_URL
): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
	const name = `${prefix}_${crypto.randomBytes(5).toString("hex")}`;
	const admin = new pg.Client({ connectionString: adminUrl });
	await admin.connect();
	await admin.query(`CREATE DATABASE ${name}`);
	await admin.end();
	const url = adminUrl.replace(/\/[^/]*$/, `/${name}`);
	return {
		url,
		name,
		drop: async () => {
			const c = new pg.Client({ connectionString: adminUrl });
			await c.connect();
			await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
			await c.end();
		}
	};
}

export const uniqueNamespace = (prefix = "t") => `${prefix}-${crypto.randomBytes(4).toString("hex")}`;

// Removes a run's Redis keys (its namespace prefix); best effort, since they expire with their TTL anyway.
export async function cleanRedis(prefix: string, url = REDIS_URL): Promise<void> {
	const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
	r.on("error", () => undefined);
	try {
		await r.connect();
		let cursor = "0";
		do {
			const [next, keys] = await r.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
			cursor = next;
			if (keys.length) await r.del(...keys);
		} while (cursor !== "0");
	} catch {
		// keys expire with their TTL anyway
	} finally {
		r.disconnect();
	}
}
