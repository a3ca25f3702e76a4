// Migrations: each module owns migrations/<module>/NNNN_<what-changes>.sql, applied platform first, then the modules
// in dependsOn order; many replicas starting at once apply each migration exactly once; an edited applied file is
// refused; a database migrated by the old global sequence (0001_core ... 0007) is recognised as up to date.
import fs from "fs";
import os from "os";
import path from "path";
import crypto from "crypto";
import { spawn } from "child_process";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { ROOT } from "../helpers/broker";
import { openPostgres, openPGlite, Db } from "../../lib/db/driver";
import { migrate, migrationId, readMigrations, MIGRATIONS_DIR, MigrationError } from "../../lib/db/migrate";
import { loadManifests, ManifestError } from "../../lib/module";

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

const tmpDirs: string[] = [];
afterAll(() => tmpDirs.forEach(d => fs.rmSync(d, { recursive: true, force: true })));
function tmpDir(prefix = "cide-migrations-"): string {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
	tmpDirs.push(dir);
	return dir;
}
// A migrations folder holding `files` ("ai/0001_x.sql": sql).
function migrationsDir(files: Record<string, string>): string {
	const dir = tmpDir();
	for (const [file, sql] of Object.entries(files)) {
		fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
		fs.writeFileSync(path.join(dir, file), sql);
	}
	return dir;
}

// The global sequence as released before per-module migrations, and where each file lives now (written out here,
// not taken from lib/db/migrate.ts, so that a wrong mapping there fails this test).
const OLD_LAYOUT: [number, string, string][] = [
	[1, "core", "platform/0001_identity_and_event_tables.sql"],
	[2, "secrets", "secrets/0001_vault.sql"],
	[3, "ai", "ai/0001_providers_models_routing_logs.sql"],
	[4, "ai", "ai/0002_log_retention.sql"],
	[5, "ai_provider_same_org", "ai/0003_provider_same_org.sql"],
	[6, "auth_key_parents", "auth/0001_api_key_parents.sql"],
	[7, "ai_provider_secret_headers", "ai/0004_provider_secret_headers.sql"]
];

// Migrations written after the old layout was retired: an upgraded database applies these, and only these.
const SINCE_OLD_LAYOUT = () =>
	readMigrations()
		.map(migrationId)
		.filter(id => !OLD_LAYOUT.some(([, , file]) => file === `${id}.sql`));

// What the old lib/db/migrate.ts did: its table, then each file in one transaction with its row.
async function migrateTheOldWay(db: Db, upTo = OLD_LAYOUT.length): Promise<void> {
	await db.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY,
		name text NOT NULL,
		checksum text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`);
	for (const [version, name, file] of OLD_LAYOUT.slice(0, upTo)) {
		const sql = fs.readFileSync(path.join(MIGRATIONS_DIR, file), "utf8");
		const checksum = crypto.createHash("sha256").update(sql).digest("hex");
		await db.transaction(async tx => {
			await tx.exec(sql);
			await tx.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [
				version,
				name,
				checksum
			]);
		});
	}
}

// Tables, columns, constraints, indexes and extensions: two databases with equal answers have the same schema.
async function schemaOf(db: Db): Promise<string[]> {
	const queries = [
		`SELECT table_name, ordinal_position, column_name, data_type, is_nullable, column_default
		FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 2`,
		`SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS def
		FROM pg_constraint WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2`,
		"SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1, 2",
		"SELECT extname FROM pg_extension ORDER BY 1"
	];
	const out: string[] = [];
	for (const sql of queries) for (const row of (await db.query(sql)).rows) out.push(JSON.stringify(row));
	return out;
}

type HistoryRow = { module: string; version: number; name: string; checksum: string; applied_at: Date };
const history = async (db: Db) =>
	(await db.query<HistoryRow>("SELECT module, version, name, checksum, applied_at FROM schema_migrations")).rows;

// After an upgrade from the old layout: nothing re-applied, one row per file with its checksum and applied time.
async function expectConvertedHistory(db: Db, oldRows: { version: number; applied_at: Date }[]) {
	const rows = await history(db);
	expect(rows.map(r => migrationId(r)).sort()).toEqual(readMigrations().map(migrationId).sort());
	const byId = new Map(readMigrations().map(m => [migrationId(m), m.checksum]));
	for (const r of rows) expect(r.checksum).toBe(byId.get(migrationId(r)));
	const appliedAt = (file: string) => rows.find(r => `${migrationId(r)}.sql` === file)!.applied_at;
	for (const [version, , file] of OLD_LAYOUT)
		expect(new Date(appliedAt(file))).toEqual(new Date(oldRows.find(r => r.version === version)!.applied_at));
}

describe("migration layout", () => {
	test("the repository's migrations: platform first, then each module after its dependencies, by number", () => {
		const ids = readMigrations().map(migrationId);
		expect(ids[0]).toBe("platform/0001_identity_and_event_tables");
		const firstOf = (mod: string) => ids.findIndex(id => id.startsWith(`${mod}/`));
		expect(firstOf("auth")).toBeLessThan(firstOf("secrets"));
		expect(firstOf("secrets")).toBeLessThan(firstOf("ai"));
		// Within a module, by number: 0001, 0002, … with no gap or repeat.
		const ai = ids.filter(id => id.startsWith("ai/"));
		expect(ai[0]).toBe("ai/0001_providers_models_routing_logs");
		expect(ai.map(id => Number(id.slice(3, 7)))).toEqual(ai.map((_, i) => i + 1));
		// Every file under migrations/ is read (none left in the old flat layout, none outside a module folder).
		const onDisk = fs.readdirSync(MIGRATIONS_DIR, { recursive: true, withFileTypes: true }).filter(e => e.isFile());
		expect(onDisk.length).toBe(ids.length);
	});

	test("modules apply in dependsOn order whatever their names; within a module by number", () => {
		const dir = migrationsDir({
			"platform/0001_base.sql": "",
			"alpha/0002_more.sql": "",
			"alpha/0001_first.sql": "",
			"zeta/0001_first.sql": "",
			"mid/0001_first.sql": ""
		});
		const modules = [{ name: "alpha", dependsOn: ["mid"] }, { name: "mid", dependsOn: ["zeta"] }, { name: "zeta" }];
		expect(readMigrations({ dir, modules }).map(migrationId)).toEqual([
			"platform/0001_base",
			"zeta/0001_first",
			"mid/0001_first",
			"alpha/0001_first",
			"alpha/0002_more"
		]);
	});

	type Refusal = [string, Record<string, string>, { name: string; dependsOn?: string[] }[], RegExp];
	test.each<Refusal>([
		[
			"a dependency cycle",
			{ "a/0001_x.sql": "" },
			[
				{ name: "a", dependsOn: ["b"] },
				{ name: "b", dependsOn: ["c"] },
				{ name: "c", dependsOn: ["a"] }
			],
			/module manifest a: dependsOn forms a cycle: a -> b -> c -> a/
		],
		[
			"an unknown module in dependsOn",
			{},
			[{ name: "a", dependsOn: ["nope"] }],
			/a: dependsOn names unknown module "nope"/
		],
		[
			"two files with one number in a module",
			{ "a/0005_one.sql": "", "a/0005_two.sql": "" },
			[{ name: "a" }],
			/migrations\/a\/: 0005_one.sql and 0005_two.sql share number 0005/
		],
		...["add_things.sql", "5_things.sql", "0000_things.sql", "0001_Things.sql", "notes.md"].map((file): Refusal => [
			`the file name ${file}`,
			{ [`a/${file}`]: "" },
			[{ name: "a" }],
			new RegExp(`migrations/a/${file.replace(".", "\\.")}: a migration file is named NNNN_<what-changes>\\.sql`)
		]),
		[
			"a file in the old flat layout",
			{ "0008_ai_new.sql": "" },
			[{ name: "ai" }],
			/migrations\/0008_ai_new.sql: migrations live in their module's folder/
		],
		[
			"a folder no module owns",
			{ "nope/0001_x.sql": "" },
			[{ name: "a" }],
			/migrations\/nope\/: no module "nope" owns it/
		],
		["a module named platform", {}, [{ name: "platform" }], /"platform" cannot name a module/]
	])("%s is refused", (_what, files, modules, message) => {
		expect(() => readMigrations({ dir: migrationsDir(files), modules })).toThrow(message);
	});

	test("a manifest's dependsOn must be a list of module names", () => {
		const dir = tmpDir("cide-modules-");
		fs.mkdirSync(path.join(dir, "x"));
		const manifest = { name: "x", description: "d", publishes: [], consumes: [], dependsOn: "auth" };
		fs.writeFileSync(path.join(dir, "x", "x.module.js"), `module.exports = ${JSON.stringify(manifest)};`);
		expect(() => loadManifests(dir)).toThrow(ManifestError);
		expect(() => loadManifests(dir)).toThrow(/dependsOn must be a list of module names/);
	});
});

describeWith(["postgres"])("migrations on PostgreSQL", () => {
	test("three processes migrating one empty database at once: all succeed, each migration applied once", async () => {
		const db = await createTestDatabase();
		try {
			const results = await Promise.all([runMigrate(db.url), runMigrate(db.url), runMigrate(db.url)]);
			for (const r of results) expect(r).toMatchObject({ code: 0 });
			const expected = readMigrations().map(migrationId);
			// Exactly one process reports each migration as applied by it; the others found it done.
			const appliedBy = results.flatMap(r => {
				const list = /applied: (.*)/.exec(r.out)![1];
				return list.startsWith("none") ? [] : list.split(", ");
			});
			expect(appliedBy.sort()).toEqual([...expected].sort());
			const conn = await openPostgres(db.url, 1);
			expect((await history(conn)).map(r => migrationId(r)).sort()).toEqual([...expected].sort());
			await conn.close();
		} finally {
			await db.drop();
		}
	}, 60_000);

	test("an applied migration edited afterwards is refused, naming the file", async () => {
		const db = await createTestDatabase();
		const dir = tmpDir();
		const conn = await openPostgres(db.url, 2);
		try {
			fs.cpSync(MIGRATIONS_DIR, dir, { recursive: true });
			fs.writeFileSync(path.join(dir, "ai", "0100_extra_demo.sql"), "CREATE TABLE extra_demo (id int);");
			await migrate(conn, { dir });
			const edited = "\nALTER TABLE extra_demo ADD COLUMN x int;";
			fs.appendFileSync(path.join(dir, "ai", "0100_extra_demo.sql"), edited);
			const err = await migrate(conn, { dir }).catch(e => e);
			expect(err).toBeInstanceOf(MigrationError);
			expect(err.message).toContain("migrations/ai/0100_extra_demo.sql was edited after it was applied");
			// Nothing of the edited file ran.
			const cols = await conn.query(
				"SELECT column_name FROM information_schema.columns WHERE table_name = 'extra_demo'"
			);
			expect(cols.rows.map(r => r.column_name)).toEqual(["id"]);
		} finally {
			await conn.close();
			await db.drop();
		}
	});

	test("a failing migration leaves nothing half-applied", async () => {
		const db = await createTestDatabase();
		const broken = "CREATE TABLE half_done (id int);\nSELECT no_such_function();";
		const dir = migrationsDir({ "platform/0001_broken.sql": broken });
		const conn = await openPostgres(db.url, 2);
		try {
			await expect(migrate(conn, { dir, modules: [] })).rejects.toThrow(/no_such_function/);
			const t = await conn.query("SELECT to_regclass('half_done') AS t");
			expect(t.rows[0].t).toBeNull();
			const m = await conn.query("SELECT count(*)::int AS n FROM schema_migrations");
			expect(m.rows[0].n).toBe(0);
		} finally {
			await conn.close();
			await db.drop();
		}
	});

	test("a database migrated by the old global sequence is up to date, with the schema of a fresh one", async () => {
		const [old, fresh] = await Promise.all([createTestDatabase(), createTestDatabase()]);
		const [oldConn, freshConn] = await Promise.all([openPostgres(old.url, 2), openPostgres(fresh.url, 2)]);
		try {
			await migrateTheOldWay(oldConn);
			const oldRows = (await oldConn.query("SELECT version, applied_at FROM schema_migrations")).rows;
			// Two replicas of the new code start at once: one converts the history, neither re-applies anything.
			const replica = await openPostgres(old.url, 2);
			const runs = await Promise.all([migrate(oldConn), migrate(replica)]).finally(() => replica.close());
			expect(runs.flatMap(r => r.applied).sort()).toEqual(SINCE_OLD_LAYOUT().sort());
			await expectConvertedHistory(oldConn, oldRows);
			expect((await migrate(oldConn)).applied).toEqual([]);
			expect((await migrate(freshConn)).applied).toEqual(readMigrations().map(migrationId));
			expect(await schemaOf(oldConn)).toEqual(await schemaOf(freshConn));
		} finally {
			await Promise.all([oldConn.close(), freshConn.close()]);
			await Promise.all([old.drop(), fresh.drop()]);
		}
	}, 60_000);

	test("a database part-way through the old sequence gets only the migrations it lacks", async () => {
		const db = await createTestDatabase();
		const conn = await openPostgres(db.url, 2);
		try {
			await migrateTheOldWay(conn, 4); // 0001_core to 0004_ai
			// The ones it lacks, in the runner's order (module by module): old ones and ones written since alike.
			const lacking = [
				"auth/0001_api_key_parents",
				"ai/0003_provider_same_org",
				"ai/0004_provider_secret_headers"
			];
			const since = SINCE_OLD_LAYOUT();
			const expected = readMigrations()
				.map(migrationId)
				.filter(id => lacking.includes(id) || since.includes(id));
			expect(expected.length).toBe(lacking.length + since.length);
			expect((await migrate(conn)).applied).toEqual(expected);
			const ids = (await history(conn)).map(r => migrationId(r));
			expect(ids.sort()).toEqual(readMigrations().map(migrationId).sort());
		} finally {
			await conn.close();
			await db.drop();
		}
	}, 60_000);

	test("an old history holding a migration this version does not know is refused, and left as it was", async () => {
		const db = await createTestDatabase();
		const conn = await openPostgres(db.url, 2);
		try {
			await migrateTheOldWay(conn);
			await conn.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (8, 'ai_elsewhere', 'x')");
			const err = await migrate(conn).catch(e => e);
			expect(err).toBeInstanceOf(MigrationError);
			expect(err.message).toMatch(
				/global migration 0008_ai_elsewhere, which this version cannot place in a module/
			);
			const cols = await conn.query(
				"SELECT column_name FROM information_schema.columns WHERE table_name = 'schema_migrations' ORDER BY 1"
			);
			expect(cols.rows.map(r => r.column_name)).toEqual(["applied_at", "checksum", "name", "version"]);
			expect((await conn.query("SELECT count(*)::int AS n FROM schema_migrations")).rows[0].n).toBe(8);
		} finally {
			await conn.close();
			await db.drop();
		}
	});
});

describe("migrations on embedded PGlite", () => {
	test("apply on PGlite (PostgreSQL 18 + pgvector) once; an old-layout database is up to date", async () => {
		const [freshDir, oldDir] = [tmpDir("cide-pglite-"), tmpDir("cide-pglite-")];
		const fresh = await openPGlite(freshDir);
		try {
			expect((await migrate(fresh)).applied).toEqual(readMigrations().map(migrationId));
			expect((await migrate(fresh)).applied).toEqual([]);
			const v = await fresh.query("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector AS d");
			expect(v.rows[0].d).toBeCloseTo(1);
			const old = await openPGlite(oldDir);
			try {
				await migrateTheOldWay(old);
				const oldRows = (await old.query("SELECT version, applied_at FROM schema_migrations")).rows;
				expect((await migrate(old)).applied).toEqual(SINCE_OLD_LAYOUT());
				await expectConvertedHistory(old, oldRows);
				expect(await schemaOf(old)).toEqual(await schemaOf(fresh));
			} finally {
				await old.close();
			}
		} finally {
			await fresh.close();
		}
	}, 120_000);
});
