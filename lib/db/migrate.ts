// Migrations: migrations/NNNN_<module>.sql, applied once each, in order, under an advisory lock so that any number
// of replicas may start at the same time. An applied file that changed afterwards stops start-up.
import fs from "fs";
import path from "path";
import crypto from "crypto";
import type { Db, ProgressLog } from "./driver";

export const MIGRATIONS_DIR = path.resolve(__dirname, "../../migrations");
export const LOCK_KEY = 0x636f6465; // "code": one fixed key for every node of the platform

export interface Migration {
	version: number;
	name: string;
	sql: string;
	checksum: string;
}

export class MigrationError extends Error {
	name = "MigrationError";
}

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
	const files = fs.readdirSync(dir).filter(f => f.endsWith(".sql")).sort();
	const seen = new Set<number>();
	return files.map(file => {
		const m = /^(\d{4})_([a-z0-9_-]+)\.sql$/.exec(file);
		if (!m) throw new MigrationError(`migration file name "${file}" must look like NNNN_<module>.sql`);
		const version = Number(m[1]);
		if (seen.has(version)) throw new MigrationError(`two migrations share version ${m[1]}`);
		seen.add(version);
		const sql = fs.readFileSync(path.join(dir, file), "utf8");
		return { version, name: m[2], sql, checksum: crypto.createHash("sha256").update(sql).digest("hex") };
	});
}

export async function migrate(db: Db, dir = MIGRATIONS_DIR, log?: ProgressLog): Promise<{ applied: string[] }> {
	const migrations = readMigrations(dir);
	return db.withAdvisoryLock(LOCK_KEY, async conn => {
		await conn.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY,
			name text NOT NULL,
			checksum text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`);
		const { rows } = await conn.query<{ version: number; name: string; checksum: string }>(
			"SELECT version, name, checksum FROM schema_migrations ORDER BY version"
		);
		const done = new Map(rows.map(r => [r.version, r]));
		for (const m of migrations) {
			const prev = done.get(m.version);
			if (prev && prev.checksum !== m.checksum)
				throw new MigrationError(
					`migration ${String(m.version).padStart(4, "0")}_${m.name}.sql was edited after it was applied (checksum differs); add a new migration instead`
				);
		}
		const applied: string[] = [];
		const pending = migrations.filter(m => !done.has(m.version));
		for (const [i, m] of pending.entries()) {
			const file = `${String(m.version).padStart(4, "0")}_${m.name}`;
			log?.(`Applying migration ${i + 1}/${pending.length}: ${file}.sql`);
			await db.transaction(async tx => {
				await tx.exec(m.sql);
				await tx.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [
					m.version,
					m.name,
					m.checksum
				]);
			});
			applied.push(file);
		}
		return { applied };
	});
}
