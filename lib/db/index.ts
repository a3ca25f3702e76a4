// The process's one database handle: opened (and migrated) by the first user, closed when the last one lets go,
// so one service stopping never closes a pool the others still use.
import { getConfig } from "../config";
import { Db, openPGlite, openPostgres, ProgressLog, withProgress } from "./driver";
import { migrate } from "./migrate";

export type { Db, Queryable, QueryResult } from "./driver";

let opening: Promise<Db> | undefined;
let users = 0;

// Rejects if `p` has not settled within `ms` (a server that does not answer).
function deadline<T>(p: Promise<T>, ms: number | undefined, what: string): Promise<T> {
	if (!ms) return p;
	let timer: NodeJS.Timeout;
	const late = new Promise<T>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms (${what})`)), ms);
	});
	return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

// The first caller (start-up's preflight) passes how to report progress and how long a PostgreSQL server may take to
// answer. Only that is bounded: creating the embedded database and applying migrations (on PostgreSQL perhaps after
// waiting for another replica's) take as long as they take.
export function acquireDb(opts: { log?: ProgressLog; connectTimeoutMs?: number } = {}): Promise<Db> {
	users++;
	if (!opening) {
		const config = getConfig();
		opening = (async () => {
			const openServer = () => openPostgres(config.databaseUrl!, config.databasePoolSize);
			const db = config.databaseUrl
				? await deadline(openServer(), opts.connectTimeoutMs, "PostgreSQL")
				: await openPGlite(config.dataDir, opts.log);
			// On PostgreSQL this may first wait for the migration lock another replica holds.
			if (config.migrate)
				await withProgress(opts.log, "checking and applying migrations", migrate(db, undefined, opts.log));
			return db;
		})();
		opening.catch(() => (opening = undefined));
	}
	return opening;
}

export async function releaseDb(): Promise<void> {
	if (users === 0) return;
	users--;
	if (users > 0 || !opening) return;
	const db = await opening;
	opening = undefined;
	await db.close();
}

// For code running after start-up (actions, channel handlers): the handle is already open.
export async function getDb(): Promise<Db> {
	if (!opening) throw new Error("database is not open in this process");
	return opening;
}
