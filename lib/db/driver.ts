// The database driver: one small interface over PostgreSQL (pg pool) and embedded PGlite, so the same SQL runs on both.
import fs from "fs";
import path from "path";
import crypto from "crypto";
import pg from "pg";
import { Worker } from "worker_threads";
import { spawn } from "child_process";

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

// Start-up progress for whoever watches a start (lib/main.ts prints it; the broker's logger does not exist yet).
export type ProgressLog = (message: string) => void;

// `work`'s outcome; meanwhile a line every 15 s saying it is still at it, so a slow start never looks hung.
export async function withProgress<T>(log: ProgressLog | undefined, what: string, work: Promise<T>): Promise<T> {
	if (!log) return work;
	const started = Date.now();
	const seconds = () => Math.round((Date.now() - started) / 1000);
	const timer = setInterval(() => log(`Still ${what} (${seconds()} s so far)`), 15_000);
	try {
		return await work;
	} finally {
		clearInterval(timer);
	}
}

// The embedded database cannot be opened; the message names the directory and what to do.
export class EmbeddedDbError extends Error {
	name = "EmbeddedDbError";
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

// PGlite runs in a worker thread (lib/db/pglite-worker.mjs): its WebAssembly would otherwise run on the node's
// event loop and hold every request behind a log flush. Each call is one message each way.
class PGliteDb implements Db {
	readonly kind = "pglite" as const;
	private pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
	private nextId = 1;
	private failed?: Error;

	constructor(
		private worker: Worker,
		private unlock: () => void
	) {
		worker.on("message", (msg: { id: number; result?: any; error?: Record<string, unknown> }) => {
			const waiter = this.pending.get(msg.id);
			if (!waiter) return;
			this.pending.delete(msg.id);
			if (msg.error) waiter.reject(Object.assign(new Error(String(msg.error.message)), msg.error));
			else waiter.resolve(msg.result);
		});
		// A worker that dies takes every waiting call with it, with the reason.
		const fail = (err: Error) => {
			this.failed = err;
			for (const w of this.pending.values()) w.reject(err);
			this.pending.clear();
		};
		worker.on("error", fail);
		worker.on("exit", code => fail(new Error(`the embedded database stopped (worker exit ${code})`)));
	}

	private send<T>(msg: Record<string, unknown>): Promise<T> {
		if (this.failed) return Promise.reject(this.failed);
		const id = this.nextId++;
		return new Promise<T>((resolve, reject) => {
			this.pending.set(id, { resolve, reject });
			this.worker.postMessage({ ...msg, id });
		});
	}

	private on(tx: number | undefined): Queryable {
		return {
			query: (sql, params = []) => this.send({ op: "query", sql, params, tx }),
			exec: async sql => {
				await this.send({ op: "exec", sql, tx });
			}
		};
	}

	query<T>(sql: string, params: unknown[] = []): Promise<QueryResult<T>> {
		return this.send({ op: "query", sql, params });
	}

	async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
		const tx = await this.send<number>({ op: "begin" });
		let result: T;
		try {
			result = await fn(this.on(tx));
		} catch (err) {
			await this.send({ op: "end", tx, commit: false }).catch(() => undefined);
			throw err;
		}
		await this.send({ op: "end", tx, commit: true });
		return result;
	}

	// One process owns a PGlite directory, so there is nothing to lock against.
	async withAdvisoryLock<T>(_key: number, fn: (conn: Queryable) => Promise<T>): Promise<T> {
		return fn(this);
	}

	async exec(sql: string): Promise<void> {
		await this.send({ op: "exec", sql });
	}

	async close() {
		if (!this.failed) await this.send({ op: "close" }).catch(() => undefined);
		await this.worker.terminate();
		this.unlock();
	}
}

export async function openPostgres(url: string, poolSize = 10): Promise<Db> {
	const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000 });
	// An idle client losing its connection must not crash the process; the pool replaces it. Nor must one that loses
	// it while checked out between queries (a transaction's, or one being closed as the pool ends): pg would emit
	// an 'error' nobody listens to. The next query on it fails instead.
	pool.on("error", () => undefined);
	pool.on("connect", client => client.on("error", () => undefined));
	await pool.query("SELECT 1");
	return new PostgresDb(pool);
}

// PGlite keeps the database in the memory of the process that opened it and writes it back to the directory; a
// second process (another `npm start`, a migration run) opening the same directory would overwrite the first's
// writes. A lock file holding the owner's pid keeps the directory to one process; a lock left by a process that no
// longer runs is taken over. A lock naming this very process is stale unless this process holds it: in a container
// every start is pid 1, and one that was killed left its lock behind.
const heldLocks = new Set<string>();

function lockDataDir(dir: string): () => void {
	const file = path.join(dir, "cide.lock");
	for (let attempt = 0; attempt < 2; attempt++) {
		try {
			fs.writeFileSync(file, String(process.pid), { flag: "wx" });
			heldLocks.add(file);
			let released = false;
			const release = () => {
				if (released) return;
				released = true;
				heldLocks.delete(file);
				process.off("exit", release);
				fs.rmSync(file, { force: true });
			};
			process.on("exit", release);
			return release;
		} catch (err: any) {
			if (err.code !== "EEXIST") throw err;
			const owner = Number(fs.readFileSync(file, "utf8"));
			const held = owner === process.pid ? heldLocks.has(file) : owner > 0 && isRunning(owner);
			if (held)
				throw new EmbeddedDbError(
					`the embedded database in ${dir} is in use by process ${owner}; ` +
						"stop it, or set DATA_DIR to another directory"
				);
			fs.rmSync(file, { force: true });
		}
	}
	throw new Error(`cannot lock the embedded database in ${dir}`);
}

function isRunning(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (err: any) {
		return err.code === "EPERM";
	}
}

// Opening an existing database takes about a second. Creating one (PGlite's initdb) takes several, and much longer on
// a busy machine: there is no deadline, only progress lines. What fails is a directory whose files PGlite cannot
// start from (it reports that within a second or so).
export async function openPGlite(
	dataDir: string,
	log?: ProgressLog,
	// How often tables are checked for vacuuming and analyzing (lib/db/pglite-vacuum.mjs says why); 0: never.
	{ vacuumEveryMs = 60_000 }: { vacuumEveryMs?: number } = {}
): Promise<Db> {
	const dir = path.join(dataDir, "pglite");
	fs.mkdirSync(dir, { recursive: true });
	const unlock = lockDataDir(dir);
	const creating = !fs.existsSync(path.join(dir, "PG_VERSION"));
	log?.(
		creating
			? `Creating the embedded database in ${dir} (first start; a minute or more on a busy machine)`
			: `Opening the embedded database in ${dir}`
	);
	const started = Date.now();
	if (creating) {
		try {
			await withProgress(log, "creating the embedded database", createPGlite(dir));
		} catch (err: any) {
			unlock();
			throw new EmbeddedDbError(`cannot create the embedded database in ${dir}: ${err.message}`);
		}
	}
	const worker = new Worker(path.join(__dirname, "pglite-worker.mjs"), { workerData: { dir, vacuumEveryMs } });
	try {
		const ready = new Promise<void>((resolve, reject) => {
			const failed = (reason: string) => {
				const what =
					"; it holds files that are not a usable database: move them away, " +
					"or set DATA_DIR to another directory";
				reject(new EmbeddedDbError(`cannot open the embedded database in ${dir}: ${reason}${what}`));
			};
			const onError = (err: Error) => failed(err.message);
			worker.once("error", onError);
			worker.once("exit", code => failed(`worker exit ${code}`));
			worker.once("message", () => {
				worker.off("error", onError);
				resolve();
			});
		});
		await withProgress(log, "opening the embedded database", ready);
	} catch (err) {
		unlock();
		throw err;
	}
	worker.removeAllListeners("exit");
	if (creating) log?.(`Embedded database created in ${((Date.now() - started) / 1000).toFixed(1)} s`);
	return new PGliteDb(worker, unlock);
}

// initdb in a process of its own (lib/db/pglite-create.mjs says why); resolves once it exited having created the
// database, else rejects with what it wrote on stderr.
function createPGlite(dir: string): Promise<void> {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, [path.join(__dirname, "pglite-create.mjs"), dir], {
			stdio: ["ignore", "ignore", "pipe"]
		});
		let stderr = "";
		child.stderr.on("data", chunk => (stderr = (stderr + chunk).slice(-2000)));
		child.on("error", reject);
		child.on("exit", (code, signal) => {
			if (code === 0) resolve();
			else reject(new Error(stderr.trim() || `initdb process ended (${signal ?? `exit ${code}`})`));
		});
	});
}
