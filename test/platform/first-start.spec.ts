// The embedded database's first start (PGlite's initdb, then every migration) takes several seconds, and many more
// on a busy machine: it must wait as long as it takes and say what it is doing, and stop only for a data directory
// that does not hold a usable database. PREFLIGHT_TIMEOUT_MS=100 stands in for the busy machine: a first start
// always takes longer than that (the old start-up stopped with "no answer within 100 ms"). The same holds for a node
// on PostgreSQL that waits while another applies migrations.
import fs from "fs";
import os from "os";
import path from "path";
import crypto from "crypto";
import pg from "pg";
import { startNode } from "../helpers/process";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { LOCK_KEY, readMigrations } from "../../lib/db/migrate";

// Embedded mode: every infrastructure URL empty.
const EMBEDDED = {
	...{ JWT_SECRET: "", TRANSPORTER: "", CACHER: "", DATABASE_URL: "", CHANNELS_URL: "", REDIS_URL: "" },
	SERVICES: "auth"
};

describe("the embedded database's first start", () => {
	const dirs: string[] = [];
	const tempDir = () => {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-first-start-"));
		dirs.push(dir);
		return dir;
	};
	afterAll(() => dirs.forEach(d => fs.rmSync(d, { recursive: true, force: true })));

	test("takes as long as it needs, saying that it creates the database and which migration it applies", async () => {
		const dataDir = tempDir();
		const node = startNode({ ...EMBEDDED, DATA_DIR: dataDir, PREFLIGHT_TIMEOUT_MS: "100" });
		try {
			await node.ready;
			const out = node.output();
			const total = readMigrations().length;
			expect(out).toContain(`Creating the embedded database in ${path.join(dataDir, "pglite")}`);
			expect(out).toContain(`Applying migration 1/${total}`);
			expect(out).toContain(`Applying migration ${total}/${total}`);
			expect(out).toMatch(/up \(embedded/);
			expect(await node.stop("SIGTERM")).toBe(0);

			// The next start opens what is there, and has nothing to apply.
			const again = startNode({ ...EMBEDDED, DATA_DIR: dataDir, PREFLIGHT_TIMEOUT_MS: "100" });
			await again.ready;
			expect(again.output()).toContain(`Opening the embedded database in ${path.join(dataDir, "pglite")}`);
			expect(again.output()).not.toContain("Applying migration");
			expect(await again.stop("SIGTERM")).toBe(0);
		} finally {
			await node.stop("SIGKILL");
		}
	}, 180_000);

	test("a data directory holding something that is not a database stops start-up, naming DATA_DIR", async () => {
		const dataDir = tempDir();
		fs.mkdirSync(path.join(dataDir, "pglite"));
		fs.writeFileSync(path.join(dataDir, "pglite", "PG_VERSION"), crypto.randomBytes(64));
		fs.mkdirSync(path.join(dataDir, "pglite", "global"));
		fs.writeFileSync(path.join(dataDir, "pglite", "global", "pg_control"), crypto.randomBytes(8192));
		const node = startNode({ ...EMBEDDED, DATA_DIR: dataDir }, { waitUp: false });

		expect(await node.exited).toBe(1);
		const line = node
			.output()
			.split("\n")
			.find(l => l.startsWith("Start-up failed:"));
		const dir = path.join(dataDir, "pglite");
		expect(line).toContain(`Start-up failed: DATA_DIR: cannot open the embedded database in ${dir}`);
		// What is wrong and what to do, not a timeout.
		expect(line).toMatch(/not a usable database/);
		expect(line).toMatch(/set DATA_DIR to another directory/);
		// Nothing was written over what was there.
		expect(fs.readdirSync(path.join(dataDir, "pglite")).sort()).toEqual(["PG_VERSION", "global"]);
	}, 60_000);
});

describeWith(["postgres"])("start-up on PostgreSQL while another node holds the migration lock", () => {
	test("waits for the lock beyond PREFLIGHT_TIMEOUT_MS, then applies the migrations", async () => {
		const db = await createTestDatabase();
		const other = new pg.Client({ connectionString: db.url });
		await other.connect();
		const node = startNode({ ...EMBEDDED, DATABASE_URL: db.url, PREFLIGHT_TIMEOUT_MS: "100" }, { waitUp: false });
		try {
			await other.query("SELECT pg_advisory_lock($1)", [LOCK_KEY]);
			// Polled, not slept: the node's session shows up waiting for the lock. Advisory locks belong to
			// a database, and other runs share the server: count this database's waiters only.
			const sql =
				"SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted" +
				" AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
			const waiting = async () => (await other.query(sql)).rows[0].n;
			for (let i = 0; i < 600 && (await waiting()) === 0 && node.proc.exitCode === null; i++)
				await new Promise(r => setTimeout(r, 50));
			// Well past the 100 ms: still waiting, not failed.
			await new Promise(r => setTimeout(r, 500));
			expect(node.proc.exitCode).toBeNull();
			expect(await waiting()).toBe(1);

			await other.query("SELECT pg_advisory_unlock($1)", [LOCK_KEY]);
			await node.waitFor(/Coder IDE node .* up/, 60_000);
			expect(node.output()).toContain(`Applying migration 1/${readMigrations().length}`);
		} finally {
			await node.stop("SIGKILL");
			await other.end();
			await db.drop();
		}
	}, 90_000);
});
