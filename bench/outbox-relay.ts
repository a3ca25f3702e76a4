// The outbox relay on the embedded database (PGlite in its worker, the platform's migrations), publishing to a channel
// that takes every event at once, so what is timed is the relay's own database work:
// - aging: rounds of 250 events written then relayed, one database with the embedded autovacuum and one without;
//   the relay's time per 100 events over each stretch of 20,000, and the outbox's and the database's size at the end;
// - backlog: one relay pass (100 due rows read, published, marked) with 30,000 rows waiting, reading them through the
//   index on created_at (migration platform/0003) against the index on next_attempt_at it replaced.
// Not run by `npm run bench` (about 2 minutes). Writes bench/results/outbox-relay.json.
// Env: BENCH_RELAY_EVENTS (200000 per database), BENCH_RELAY_VACUUM_EVERY_MS (10000; the platform's default is 60000).
import fs from "fs";
import os from "os";
import path from "path";
import crypto from "crypto";
import type { ServiceBroker } from "moleculer";
import { openPGlite, type Db } from "../lib/db/driver";
import { migrate } from "../lib/db/migrate";
import { OutboxRelay, writeManyToOutbox } from "../lib/events/outbox";

const EVENTS = Number(process.env.BENCH_RELAY_EVENTS ?? 200_000);
const VACUUM_EVERY_MS = Number(process.env.BENCH_RELAY_VACUUM_EVERY_MS ?? 10_000);
const ROUND = 250;
const STRETCH = 20_000;
const BACKLOG = 30_000;

const broker = {
	logger: { warn: console.warn },
	sendToChannel: async () => undefined
} as unknown as ServiceBroker;

function events(n: number) {
	return Array.from({ length: n }, () => ({
		id: crypto.randomUUID(),
		type: "ai.completion.completed",
		time: new Date().toISOString(),
		organizationId: crypto.randomUUID(),
		model: "gpt-4o-mini",
		usage: { promptTokens: 12, completionTokens: 5 }
	}));
}

async function write(db: Db, n: number) {
	for (let i = 0; i < n; i += 500) await db.transaction(tx => writeManyToOutbox(tx, events(Math.min(500, n - i))));
}

async function withDb<T>(vacuumEveryMs: number, fn: (db: Db, relay: OutboxRelay) => Promise<T>): Promise<T> {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-bench-relay-"));
	const db = await openPGlite(dir, undefined, { vacuumEveryMs });
	try {
		await migrate(db);
		return await fn(db, new OutboxRelay(broker, db));
	} finally {
		await db.close();
		fs.rmSync(dir, { recursive: true, force: true });
	}
}

async function aging(vacuumEveryMs: number): Promise<{ msPer100: number[]; outboxMiB: number; databaseMiB: number }> {
	return withDb(vacuumEveryMs, async (db, relay) => {
		const perStretch: number[] = [];
		let ms = 0;
		for (let done = 0; done < EVENTS;) {
			await write(db, ROUND);
			const t0 = performance.now();
			await relay.drain();
			ms += performance.now() - t0;
			done += ROUND;
			if (done % STRETCH === 0) {
				perStretch.push(+((ms / STRETCH) * 100).toFixed(2));
				ms = 0;
			}
		}
		const { rows } = await db.query(
			"SELECT pg_total_relation_size('outbox') AS outbox, pg_database_size(current_database()) AS db"
		);
		const mib = (bytes: number) => +(bytes / 2 ** 20).toFixed(1);
		return { msPer100: perStretch, outboxMiB: mib(rows[0].outbox), databaseMiB: mib(rows[0].db) };
	});
}

async function backlogPass(db: Db, relay: OutboxRelay): Promise<number> {
	const times: number[] = [];
	for (let i = 0; i < 20; i++) {
		await db.query("UPDATE outbox SET published_at = NULL WHERE id IN (SELECT id FROM outbox LIMIT 100)");
		await db.exec("VACUUM ANALYZE outbox");
		const t0 = performance.now();
		await relay["relayBatch"](db, false);
		times.push(performance.now() - t0);
	}
	times.sort((a, b) => a - b);
	return +times[times.length >> 1].toFixed(2);
}

async function backlog() {
	return withDb(0, async (db, relay) => {
		await write(db, BACKLOG);
		const inOrder = await backlogPass(db, relay);
		await db.exec(
			"DROP INDEX outbox_due_idx; CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE published_at IS NULL"
		);
		const sorted = await backlogPass(db, relay);
		return { pending: BACKLOG, passMsCreatedAtIndex: inOrder, passMsNextAttemptIndex: sorted };
	});
}

async function main() {
	console.log(`Outbox relay on the embedded database: ${EVENTS} events per database, rounds of ${ROUND}…`);
	const withVacuum = await aging(VACUUM_EVERY_MS);
	const without = await aging(0);
	console.log(`relay ms per 100 events, per ${STRETCH} relayed:`);
	const line = (r: typeof without) =>
		`${r.msPer100.join(" ")}; outbox ${r.outboxMiB} MiB, database ${r.databaseMiB} MiB at the end`;
	console.log(`  autovacuum every ${VACUUM_EVERY_MS} ms: ${line(withVacuum)}`);
	console.log(`  no vacuum:                  ${line(without)}`);
	const b = await backlog();
	console.log(
		`one pass with ${b.pending} waiting: ${b.passMsCreatedAtIndex} ms (index on created_at), ` +
			`${b.passMsNextAttemptIndex} ms (index on next_attempt_at, before)`
	);
	const out = path.join(__dirname, "results", "outbox-relay.json");
	fs.writeFileSync(
		out,
		JSON.stringify(
			{
				at: new Date().toISOString(),
				events: EVENTS,
				vacuumEveryMs: VACUUM_EVERY_MS,
				aging: { autovacuum: withVacuum, none: without },
				backlog: b
			},
			null,
			2
		) + "\n"
	);
	console.log(`Results: ${path.relative(process.cwd(), out)}`);
}

main().catch(err => {
	console.error(err);
	process.exit(1);
});
