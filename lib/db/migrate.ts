// Migrations: each module owns migrations/<module>/NNNN_<what-changes>.sql, numbered within the module, so modules
// written side by side never collide. migrations/platform comes first (the tables lib/ and every module reference:
// users, organizations, outbox, ...), then the modules in dependency order (manifest `dependsOn`), each by number.
// Each file is applied once, under one advisory lock so that any number of replicas may start at the same time; an
// applied file that changed afterwards stops start-up.
//
// Every module folder's migrations are applied, whether or not this process runs the module (SERVICES): the modules
// share one database with foreign keys across modules (a node running only `ai` needs auth's tables), a module's
// migration may build on another's table, and a schema that depended on which replica started first would differ
// from one install to the next. One lock and one history for all of them keeps that simple.
import fs from "fs";
import path from "path";
import crypto from "crypto";
import type { Db, ProgressLog, Queryable } from "./driver";
import { dependencyOrder, loadManifests, ModuleManifest, SERVICES_DIR } from "../module";
import { ROOT } from "../paths";

export const MIGRATIONS_DIR = path.join(ROOT, "migrations");
// Not a module (there is no services/platform): the shared tables, applied before every module's.
export const PLATFORM = "platform";
export const LOCK_KEY = 0x636f6465; // "code": one fixed key for every node of the platform
const FILE = /^(\d{4})_([a-z0-9][a-z0-9_-]*)\.sql$/;

export interface Migration {
	module: string;
	version: number; // within the module
	name: string; // what it changes
	sql: string;
	checksum: string;
}

export interface MigrationSource {
	dir?: string; // holds one folder per module
	// The modules whose folders may hold migrations: every module folder in services/ unless given.
	modules?: Pick<ModuleManifest, "name" | "dependsOn">[];
}

export class MigrationError extends Error {
	name = "MigrationError";
}

// "ai/0004_provider_secret_headers": how logs, `npm run migrate` and the REPL name a migration.
export function migrationId(m: Pick<Migration, "module" | "version" | "name">): string {
	return `${m.module}/${String(m.version).padStart(4, "0")}_${m.name}`;
}

const fileOf = (m: Pick<Migration, "module" | "version" | "name">) => `migrations/${migrationId(m)}.sql`;

function readModule(dir: string, mod: string): Migration[] {
	const files = fs
		.readdirSync(path.join(dir, mod))
		.filter(f => !f.startsWith("."))
		.sort();
	const seen = new Map<number, string>();
	return files.map(file => {
		const m = FILE.exec(file);
		if (!m || Number(m[1]) === 0)
			throw new MigrationError(
				`migrations/${mod}/${file}: a migration file is named NNNN_<what-changes>.sql ` +
					`(a number from 0001, then lower-case words, e.g. 0002_add_team_quotas.sql)`
			);
		const version = Number(m[1]);
		const other = seen.get(version);
		if (other)
			throw new MigrationError(
				`migrations/${mod}/: ${other} and ${file} share number ${m[1]}; renumber the newer one`
			);
		seen.set(version, file);
		const sql = fs.readFileSync(path.join(dir, mod, file), "utf8");
		const checksum = crypto.createHash("sha256").update(sql).digest("hex");
		return { module: mod, version, name: m[2], sql, checksum };
	});
}

// Every migration, in the order they apply. A folder no module owns, a file outside a module folder, a bad file
// name or two files with one number in a module are refused, as are dependsOn naming an unknown module or a cycle.
export function readMigrations(source: MigrationSource = {}): Migration[] {
	const dir = source.dir ?? MIGRATIONS_DIR;
	const modules = source.modules ?? loadManifests(SERVICES_DIR);
	if (modules.some(m => m.name === PLATFORM))
		throw new MigrationError(`"${PLATFORM}" cannot name a module: migrations/${PLATFORM} holds the shared tables`);
	const order = [PLATFORM, ...dependencyOrder(modules).map(m => m.name)];
	const entries = fs.readdirSync(dir, { withFileTypes: true }).filter(e => !e.name.startsWith("."));
	for (const e of entries) {
		if (!e.isDirectory())
			throw new MigrationError(
				`migrations/${e.name}: migrations live in their module's folder, ` +
					"migrations/<module>/NNNN_<what-changes>.sql"
			);
		if (!order.includes(e.name))
			throw new MigrationError(
				`migrations/${e.name}/: no module "${e.name}" owns it ` +
					`(services/${e.name}/${e.name}.module.ts is missing)`
			);
	}
	const folders = new Set(entries.map(e => e.name));
	return order.filter(mod => folders.has(mod)).flatMap(mod => readModule(dir, mod));
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
	module text NOT NULL,
	version integer NOT NULL,
	name text NOT NULL,
	checksum text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (module, version)
)`;

// The one global sequence used before migrations belonged to modules: old version and name -> the same file now
// (its content did not change, so the checksum recorded then still holds). Frozen: new migrations never go here.
const LEGACY: Record<number, { old: string; module: string; version: number; name: string }> = {
	1: { old: "core", module: PLATFORM, version: 1, name: "identity_and_event_tables" },
	2: { old: "secrets", module: "secrets", version: 1, name: "vault" },
	3: { old: "ai", module: "ai", version: 1, name: "providers_models_routing_logs" },
	4: { old: "ai", module: "ai", version: 2, name: "log_retention" },
	5: { old: "ai_provider_same_org", module: "ai", version: 3, name: "provider_same_org" },
	6: { old: "auth_key_parents", module: "auth", version: 1, name: "api_key_parents" },
	7: { old: "ai_provider_secret_headers", module: "ai", version: 4, name: "provider_secret_headers" }
};

// A database migrated by the global sequence gets its history rewritten to (module, version) once, in one
// transaction under the migration lock: nothing is re-applied, and the applied times and checksums are kept.
async function convertLegacyHistory(db: Db, conn: Queryable): Promise<void> {
	const { rows: cols } = await conn.query<{ column_name: string }>(
		`SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'schema_migrations'`
	);
	if (!cols.length || cols.some(c => c.column_name === "module")) return;
	await db.transaction(async tx => {
		const { rows } = await tx.query<{ version: number; name: string; checksum: string; applied_at: Date }>(
			"SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
		);
		const converted = rows.map(r => {
			const to = LEGACY[r.version];
			const old = `${String(r.version).padStart(4, "0")}_${r.name}`;
			if (!to || to.old !== r.name)
				throw new MigrationError(
					`schema_migrations records global migration ${old}, which this version cannot place in a module ` +
						"(it knows 0001_core to 0007_ai_provider_secret_headers); nothing changed"
				);
			return [to.module, to.version, to.name, r.checksum, r.applied_at];
		});
		await tx.exec("DROP TABLE schema_migrations");
		await tx.exec(CREATE_TABLE);
		const insert =
			"INSERT INTO schema_migrations (module, version, name, checksum, applied_at) VALUES ($1, $2, $3, $4, $5)";
		for (const row of converted) await tx.query(insert, row);
	});
}

export async function migrate(db: Db, source: MigrationSource = {}, log?: ProgressLog): Promise<{ applied: string[] }> {
	const migrations = readMigrations(source);
	return db.withAdvisoryLock(LOCK_KEY, async conn => {
		await convertLegacyHistory(db, conn);
		await conn.query(CREATE_TABLE);
		const { rows } = await conn.query<{ module: string; version: number; checksum: string }>(
			"SELECT module, version, checksum FROM schema_migrations"
		);
		const done = new Map(rows.map(r => [`${r.module}/${r.version}`, r.checksum]));
		for (const m of migrations) {
			const checksum = done.get(`${m.module}/${m.version}`);
			if (checksum !== undefined && checksum !== m.checksum)
				throw new MigrationError(
					`${fileOf(m)} was edited after it was applied (checksum differs); add a new migration instead`
				);
		}
		const applied: string[] = [];
		const pending = migrations.filter(m => !done.has(`${m.module}/${m.version}`));
		for (const [i, m] of pending.entries()) {
			log?.(`Applying migration ${i + 1}/${pending.length}: ${fileOf(m)}`);
			await db.transaction(async tx => {
				await tx.exec(m.sql);
				await tx.query(
					"INSERT INTO schema_migrations (module, version, name, checksum) VALUES ($1, $2, $3, $4)",
					[m.module, m.version, m.name, m.checksum]
				);
			});
			applied.push(migrationId(m));
		}
		return { applied };
	});
}
