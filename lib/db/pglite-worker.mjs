// Embedded PostgreSQL (PGlite) in a worker thread. PGlite is WebAssembly that runs synchronously on the thread
// that calls it; here a log flush or a large read no longer stalls the node's HTTP and broker traffic.
// Plain JavaScript so that every runner (tsx, jest, the Docker image) can start it without a TypeScript loader.
// Protocol (lib/db/driver.ts): { id, op, ... } in, { id, result } or { id, error } out. A transaction is opened
// by "begin" and stays open, holding PGlite's lock, until "end" commits or rolls it back.
import { parentPort, workerData } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";
import { pgliteOptions } from "./pglite-settings.mjs";
import { startAutovacuum } from "./pglite-vacuum.mjs";

const db = await PGlite.create(workerData.dir, pgliteOptions);
const autovacuum = workerData.vacuumEveryMs
	? startAutovacuum(db, {
			everyMs: workerData.vacuumEveryMs,
			onError: err => console.warn(`Embedded database: vacuum pass failed: ${err?.message ?? err}`)
		})
	: undefined;
const transactions = new Map(); // tx id → { tx, decide(commit: boolean), done: Promise }
let nextTx = 1;

const ROLLBACK = Symbol("rollback");

function errorFields(err) {
	const out = { message: String(err?.message ?? err), name: err?.name ?? "Error" };
	for (const key of [
		"code",
		"detail",
		"hint",
		"constraint",
		"table",
		"column",
		"schema",
		"severity",
		"position",
		"where",
		"routine"
	])
		if (err?.[key] !== undefined) out[key] = err[key];
	return out;
}

// rowCount as pg reports it: the rows a SELECT (or a RETURNING) gave, else the rows a DML statement touched. PGlite's
// affectedRows is 0 for a SELECT, which made "SELECT … FOR UPDATE; if (rowCount)" checks false in embedded mode only.
const shape = res => ({ rows: res.rows, rowCount: res.rows.length || res.affectedRows || 0 });

async function handle(msg) {
	switch (msg.op) {
		case "query": {
			const target = msg.tx ? transactions.get(msg.tx)?.tx : db;
			if (!target) throw new Error("transaction is no longer open");
			return shape(await target.query(msg.sql, msg.params));
		}
		case "exec": {
			const target = msg.tx ? transactions.get(msg.tx)?.tx : db;
			if (!target) throw new Error("transaction is no longer open");
			await target.exec(msg.sql);
			return null;
		}
		case "begin": {
			// Resolves once PGlite has started the transaction, which then stays open until "end" decides.
			const id = nextTx++;
			return new Promise((began, failed) => {
				const entry = {};
				entry.done = db
					.transaction(async tx => {
						entry.tx = tx;
						const commit = await new Promise(decide => {
							entry.decide = decide;
							transactions.set(id, entry);
							began(id);
						});
						if (!commit) throw ROLLBACK;
					})
					.catch(err => {
						if (err !== ROLLBACK) throw err;
					})
					.finally(() => transactions.delete(id));
				entry.done.catch(failed); // BEGIN itself failed (a later failure is reported by "end")
			});
		}
		case "end": {
			const entry = transactions.get(msg.tx);
			if (!entry) throw new Error("transaction is no longer open");
			entry.decide(msg.commit);
			await entry.done;
			return null;
		}
		case "close":
			await autovacuum?.stop();
			await db.close();
			return null;
		default:
			throw new Error(`unknown op ${msg.op}`);
	}
}

parentPort.on("message", msg => {
	handle(msg).then(
		result => parentPort.postMessage({ id: msg.id, result }),
		err => parentPort.postMessage({ id: msg.id, error: errorFields(err) })
	);
});
parentPort.postMessage({ ready: true });
