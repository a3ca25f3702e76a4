// The database driver: one small interface over PostgreSQL (pg pool) and embedded PGlite, so the same SQL runs on both.
import fs from "fs";
import path from "path";
import crypto from "crypto";
import pg from "pg";
import type { PGlite as PGliteType } from "@electric-sql/pglite";

export interface QueryResult<T = any> {
	rows: T[];
	rowCount: number;
}

export interface QueryOptions {
	// Run as a named prepared statement: parsed and planned once per connection instead of on every call (on
	// PostgreSQL this cut the server's CPU per primary-key read by about 60%). Only for SQL texts from a small fixed
	// set (each connection keeps every statement it prepared), selecting named columns rather than `*`, so an added
	// column never changes a prepared statement's result type. PGlite ignores it.
	prepare?: boolean;
}

export interface Queryable {
	query<T = any>(sql: string, params?: unknown[], opts?: QueryOptions): Promise<QueryResult<T>>;
	// Runs a script of several statements (migrations).
	exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
	readonly kind: "postgres" | "pglite";
	// Runs fn in one transaction on one connection; rolls back if fn throws.
	transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
	// Runs fn while holding a session-level advisory lock (released even if fn throws).
	withAdvisoryLock<T>(key: number, fn: (conn: Queryable) => Promise<T>): Promise<T>;
	close(): Promise<void>;
}

// Counts and sums come back as numbers on both engines (PGlite already does this).
pg.types.setTypeParser(20, v => Number(v));
pg.types.setTypeParser(1700, v => Number(v));

const statementNames = new Map<string, string>();
function statementName(sql: string): string {
	let name = statementNames.get(sql);
	if (!name) {
		name = "s_" + crypto.createHash("sha1").update(sql).digest("hex").slice(0, 24);
		statementNames.set(sql, name);
	}
	return name;
}

// A prepared statement whose result type a migration changed fails with 0A000 ("cached plan must not change result
// type") on connections that prepared it before; the same SQL unnamed still works (not inside a transaction, which
// that error has already aborted).
async function runQuery(q: pg.Pool | pg.PoolClient, sql: string, params: unknown[], opts?: QueryOptions) {
	if (!opts?.prepare) return q.query(sql, params as any[]);
	try {
		return await q.query({ name: statementName(sql), text: sql, values: params as any[] });
	} catch (err: any) {
		if (err?.code !== "0A000" || !(q instanceof pg.Pool)) throw err;
		return q.query(sql, params as any[]);
	}
}

function wrapClient(client: pg.PoolClient): Queryable {
	return {
		query: async (sql, params = [], opts) => {
			const res = await runQuery(client, sql, params, opts);
			return { rows: res.rows, rowCount: res.rowCount ?? 0 };
		},
		// pg runs a multi-statement string as one simple query when it has no parameters.
		exec: async sql => {
			await client.query(sql);
		}
	};
}

class PostgresDb implements Db {
	readonly kind = "postgres" as const;
	constructor(private pool: pg.Pool) {}

	async query<T>(sql: string, params: unknown[] = [], opts?: QueryOptions): Promise<QueryResult<T>> {
		const res = await runQuery(this.pool, sql, params, opts);
		return { rows: res.rows as T[], rowCount: res.rowCount ?? 0 };
	}

	async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
		const client = await this.pool.connect();
		const tx = wrapClient(client);
		try {
			await client.query("BEGIN");
			const result = await fn(tx);
			await client.query("COMMIT");
			return result;
		} catch (err) {
			await client.query("ROLLBACK").catch(() => undefined);
			throw err;
		} finally {
			client.release();
		}
	}

	async withAdvisoryLock<T>(key: number, fn: (conn: Queryable) => Promise<T>): Promise<T> {
		const client = await this.pool.connect();
		const conn = wrapClient(client);
		try {
			await client.query("SELECT pg_advisory_lock($1)", [key]);
			try {
				return await fn(conn);
			} finally {
				await client.query("SELECT pg_advisory_unlock($1)", [key]);
			}
		} finally {
			client.release();
		}
	}

	async exec(sql: string): Promise<void> {
		await this.pool.query(sql);
	}

	async close() {
		await this.pool.end();
	}
}

class PGliteDb implements Db {
	readonly kind = "pglite" as const;
	constructor(private db: PGliteType) {}

	async query<T>(sql: string, params: unknown[] = []): Promise<QueryResult<T>> {
		const res = await this.db.query<T>(sql, params as any[]);
		return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
	}

	transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
		return this.db.transaction(async t => {
			const tx: Queryable = {
				query: async (sql, params = []) => {
					const res = await t.query<any>(sql, params as any[]);
					return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
				},
				exec: async sql => {
					await t.exec(sql);
				}
			};
			return fn(tx);
		});
	}

	// One process owns a PGlite directory, so there is nothing to lock against.
	async withAdvisoryLock<T>(_key: number, fn: (conn: Queryable) => Promise<T>): Promise<T> {
		return fn(this);
	}

	async exec(sql: string): Promise<void> {
		await this.db.exec(sql);
	}

	async close() {
		await this.db.close();
	}
}

export async function openPostgres(url: string, poolSize = 10): Promise<Db> {
	const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000 });
	// An idle client losing its connection must not crash the process; the pool replaces it.
	pool.on("error", () => undefined);
	await pool.query("SELECT 1");
	return new PostgresDb(pool);
}

export async function openPGlite(dataDir: string): Promise<Db> {
	const { PGlite } = await import("@electric-sql/pglite");
	const { vector } = await import("@electric-sql/pglite-pgvector");
	const dir = path.join(dataDir, "pglite");
	fs.mkdirSync(dir, { recursive: true });
	const db = await PGlite.create(dir, { extensions: { vector } });
	return new PGliteDb(db);
}
