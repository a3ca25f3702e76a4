// Migrations: many replicas starting at once apply each migration exactly once; an edited applied file is refused.
import fs from "fs";
import os from "os";
import path from "path";
import { spawn } from "child_process";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { ROOT } from "../helpers/broker";
import { openPostgres, openPGlite } from "../../lib/db/driver";
import { migrate, readMigrations, MIGRATIONS_DIR, MigrationError } from "../../lib/db/migrate";

function runMigrate(databaseUrl: string): Promise<{ code: number | null; out: string }> {
	return new Promise(resolve => {
		const p = spawn(process.execPath, ["--import", "tsx", "lib/db/migrate-cli.ts"], {
			cwd: ROOT,
			env: { PATH: process.env.PATH!, DATABASE_URL: databaseUrl, JWT_SECRET: "x".repeat(32) }
		});
		let out = "";
		p.stdout.on("data", d => (out += d));
		p.stderr.on("data", d => (out += d));
		p.on("exit", code => resolve({ code, out }));
	});
}

describeWith(["postgres"])("migrations on PostgreSQL", () => {
	test("three processes migrating one empty database at once: all succeed, each migration applied once", async () => {
		const db = await createTestDatabase();
		try {
			const results = await Promise.all([runMigrate(db.url), runMigrate(db.url), runMigrate(db.url)]);
			for (const r of results) expect(r).toMatchObject({ code: 0 });
			const expected = readMigrations().map(m => `${String(m.version).padStart(4, "0")}_${m.name}`);
			// Exactly one process reports each migration as applied by it; the others found it done.
			const appliedBy = results.flatMap(r => (/applied: (.*)/.exec(r.out)![1].startsWith("none") ? [] : /applied: (.*)/.exec(r.out)![1].split(", ")));
			expect(appliedBy.sort()).toEqual(expected.sort());
			const conn = await openPostgres(db.url, 1);
			const { rows } = await conn.query("SELECT version FROM schema_migrations ORDER BY version");
			expect(rows.map(r => r.version)).toEqual(readMigrations().map(m => m.version));
			await conn.close();
		} finally {
			await db.drop();
		}
	}, 60_000);

	test("an applied migration edited afterwards is refused, naming the file", async () => {
		const db = await createTestDatabase();
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-migrations-"));
		const conn = await openPostgres(db.url, 2);
		try {
			for (const f of fs.readdirSync(MIGRATIONS_DIR)) fs.copyFileSync(path.join(MIGRATIONS_DIR, f), path.join(dir, f));
			fs.writeFileSync(path.join(dir, "9000_extra.sql"), "CREATE TABLE extra_demo (id int);");
			await migrate(conn, dir);
			fs.appendFileSync(path.join(dir, "9000_extra.sql"), "\nALTER TABLE extra_demo ADD COLUMN x int;");
			const err = await migrate(conn, dir).catch(e => e);
			expect(err).toBeInstanceOf(MigrationError);
			expect(err.message).toContain("9000_extra.sql was edited after it was applied");
			// Nothing of the edited file ran.
			const cols = await conn.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'extra_demo'");
			expect(cols.rows.map(r => r.column_name)).toEqual(["id"]);
		} finally {
			await conn.close();
			await db.drop();
			fs.rmSync(dir, { recursive: true, force: true });
		}
	});

	test("a failing migration leaves nothing half-applied", async () => {
		const db = await createTestDatabase();
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-migrations-"));
		const conn = await openPostgres(db.url, 2);
		try {
			fs.writeFileSync(path.join(dir, "0001_broken.sql"), "CREATE TABLE half_done (id int);\nSELECT no_such_function();");
			await expect(migrate(conn, dir)).rejects.toThrow(/no_such_function/);
			const t = await conn.query("SELECT to_regclass('half_done') AS t");
			expect(t.rows[0].t).toBeNull();
			const m = await conn.query("SELECT count(*)::int AS n FROM schema_migrations");
			expect(m.rows[0].n).toBe(0);
		} finally {
			await conn.close();
			await db.drop();
			fs.rmSync(dir, { recursive: true, force: true });
		}
	});
});

describe("migrations on embedded PGlite", () => {
	test("the same migrations apply on PGlite (PostgreSQL 18 + pgvector), once", async () => {
		const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-pglite-"));
		try {
			const db = await openPGlite(dataDir);
			const first = await migrate(db);
			expect(first.applied.length).toBe(readMigrations().length);
			expect((await migrate(db)).applied).toEqual([]);
			const v = await db.query("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector AS d");
			expect(v.rows[0].d).toBeCloseTo(1);
			await db.close();
		} finally {
			fs.rmSync(dataDir, { recursive: true, force: true });
		}
	}, 60_000);
});
