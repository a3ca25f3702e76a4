// The process's one database handle: opened (and migrated) by the first user, closed when the last one lets go,
// so one service stopping never closes a pool the others still use.
import { getConfig } from "../config";
import { Db, openPGlite, openPostgres } from "./driver";
import { migrate } from "./migrate";

export type { Db, Queryable, QueryResult } from "./driver";

let opening: Promise<Db> | undefined;
let users = 0;

export function acquireDb(): Promise<Db> {
	users++;
	if (!opening) {
		const config = getConfig();
		opening = (async () => {
			const db = config.databaseUrl
				? await openPostgres(config.databaseUrl, config.databasePoolSize)
				: await openPGlite(config.dataDir);
			if (config.migrate) await migrate(db);
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
