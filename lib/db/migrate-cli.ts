// `npm run migrate`: apply pending migrations to the configured database and exit (start-up does the same).
import { ConfigError, loadConfig, setConfig } from "../config";
import { openPGlite, openPostgres } from "./driver";
import { migrate } from "./migrate";

async function main() {
	const config = loadConfig();
	setConfig(config);
	const log = (message: string) => console.log(message);
	const db = config.databaseUrl ? await openPostgres(config.databaseUrl, 2) : await openPGlite(config.dataDir, log);
	try {
		const { applied } = await migrate(db, undefined, log);
		console.log(applied.length ? `applied: ${applied.join(", ")}` : "applied: none (up to date)");
	} finally {
		await db.close();
	}
}

main().catch(err => {
	process.stderr.write(`Migration failed: ${err instanceof ConfigError ? err.message : err.message}\n`);
	process.exit(1);
});
