// PostgreSQL's autovacuum for the embedded database. PGlite runs PostgreSQL as one process with no background workers,
// so nothing ever vacuumed or analyzed it: every updated or deleted row stayed in its files for good (the outbox,
// whose rows are each updated once when relayed, took 156 MiB after 200,000 events against 110 with this:
// bench/outbox-relay.ts), the planner never had statistics, and transaction ids were never frozen. Here the worker
// applies autovacuum's own rule with the server's own settings (autovacuum_vacuum_threshold, …_scale_factor,
// …_insert_threshold, …_freeze_max_age, …) every `everyMs`: each table past them is vacuumed or analyzed, one
// statement at a time, so queries run in between. Plain JavaScript, like the worker that imports it.

const DUE = `
SELECT format('%I.%I', s.schemaname, s.relname) AS name,
	s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float8
			+ current_setting('autovacuum_vacuum_scale_factor')::float8 * t.n
		OR s.n_ins_since_vacuum > current_setting('autovacuum_vacuum_insert_threshold')::float8
			+ current_setting('autovacuum_vacuum_insert_scale_factor')::float8 * t.n
		OR age(c.relfrozenxid) > current_setting('autovacuum_freeze_max_age')::float8 AS vacuum,
	s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8
		+ current_setting('autovacuum_analyze_scale_factor')::float8 * t.n AS analyze
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
CROSS JOIN LATERAL (SELECT greatest(c.reltuples, 0) AS n) t`;

// The catalogs too, once the database's oldest unfrozen transaction id is that old (wraparound protection).
const DATABASE_DUE = `
SELECT age(datfrozenxid) > current_setting('autovacuum_freeze_max_age')::float8 AS due
FROM pg_database WHERE datname = current_database()`;

// One pass.
async function vacuumDue(db) {
	if ((await db.query(DATABASE_DUE)).rows[0]?.due) return db.exec("VACUUM (ANALYZE)");
	for (const t of (await db.query(DUE)).rows)
		if (t.vacuum) await db.exec(`VACUUM ${t.analyze ? "(ANALYZE) " : ""}${t.name}`);
		else if (t.analyze) await db.exec(`ANALYZE ${t.name}`);
}

// Passes every `everyMs` (the first after `everyMs`: start-up stays quick) until stop(), which waits for the one running.
export function startAutovacuum(db, { everyMs, onError }) {
	let timer;
	let running = Promise.resolve();
	let stopped = false;
	const schedule = () => {
		timer = setTimeout(() => {
			running = vacuumDue(db)
				.catch(onError)
				.finally(() => stopped || schedule());
		}, everyMs);
		timer.unref();
	};
	schedule();
	return {
		async stop() {
			stopped = true;
			clearTimeout(timer);
			await running;
		}
	};
}
