// Real infrastructure for tests: PostgreSQL, RabbitMQ and Redis on 127.0.0.1. Without REQUIRE_INFRA=1 a missing
// service skips the tests that need it; with it (CI) the run fails instead.
import fs from "fs";
import net from "net";
import os from "os";
import path from "path";
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

// TEST_DB=pglite: the specs that take their database from createTestDatabase and their broker's database settings
// from its `env` run on embedded PGlite instead (a fresh DATA_DIR each), the same SQL on the other engine.
export const EMBEDDED_DB = process.env.TEST_DB === "pglite";
// What a spec on the test database needs running: PostgreSQL, or nothing when it runs on PGlite.
export const DATABASE_SERVICES: Service[] = EMBEDDED_DB ? [] : ["postgres"];
export const DATABASE_ENGINE = EMBEDDED_DB ? "embedded PGlite" : "real PostgreSQL";

export interface TestDatabase {
	url: string;
	name: string;
	// The broker's database settings: DATABASE_URL, or for PGlite no URL and its own DATA_DIR.
	env: Record<string, string>;
	drop: () => Promise<void>;
}

// A fresh database per test file; dropped by the returned function.
// A throwaway database (the bench makes its own with another prefix and admin URL); drop() removes it.
export async function createTestDatabase(prefix = "cide_test", adminUrl = PG_ADMIN_URL): Promise<TestDatabase> {
	const name = `${prefix}_${crypto.randomBytes(5).toString("hex")}`;
	if (EMBEDDED_DB) {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
		return {
			url: "",
			name,
			env: { DATABASE_URL: "", DATA_DIR: dir },
			drop: async () => fs.rmSync(dir, { recursive: true, force: true })
		};
	}
	const admin = new pg.Client({ connectionString: adminUrl });
	await admin.connect();
	await admin.query(`CREATE DATABASE ${name}`);
	await admin.end();
	const url = adminUrl.replace(/\/[^/]*$/, `/${name}`);
	return {
		url,
		name,
		env: { DATABASE_URL: url },
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
