// The embedded database runs PGlite in a worker thread: the driver must keep the semantics of an in-process
// PostgreSQL — transactions that commit or roll back as a whole and run one at a time, errors with their
// PostgreSQL fields, values that survive the trip between threads — and never block the node's event loop.
import fs from "fs";
import os from "os";
import path from "path";
import { spawnSync } from "child_process";
import { openPGlite, Db } from "../../lib/db/driver";
import { waitUntil } from "../helpers/wait";

// A data directory of its own for one test, removed afterwards.
async function inTempDir(prefix: string, fn: (dir: string) => Promise<void>) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
	try {
		await fn(dir);
	} finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
}

describe("embedded PGlite driver (worker thread)", () => {
	let dataDir: string;
	let db: Db;

	beforeAll(async () => {
		dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-pglite-driver-"));
		db = await openPGlite(dataDir);
		await db.exec(
			"CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL, data bytea, meta jsonb, at timestamptz)"
		);
	}, 60_000);

	afterAll(async () => {
		await db?.close();
		fs.rmSync(dataDir, { recursive: true, force: true });
	});

	test("values cross the thread boundary intact", async () => {
		const at = new Date("2026-01-02T03:04:05.678Z");
		const bytes = Buffer.from([0, 1, 2, 250, 255]);
		const ins = await db.query("INSERT INTO items (id, label, data, meta, at) VALUES ($1, $2, $3, $4, $5)", [
			1,
			"one",
			bytes,
			{ a: [1, "x"] },
			at
		]);
		expect(ins.rowCount).toBe(1);
		const { rows } = await db.query(
			"SELECT id, label, data, meta, at, count(*) OVER ()::bigint AS n FROM items WHERE id = $1",
			[1]
		);
		expect(rows[0]).toMatchObject({ id: 1, label: "one", meta: { a: [1, "x"] }, n: 1 });
		expect(Buffer.from(rows[0].data)).toEqual(bytes);
		expect(rows[0].at).toEqual(at);
	});

	test("rowCount is what pg reports: rows a SELECT returns, rows a DML statement touches", async () => {
		await db.query("INSERT INTO items (id, label) VALUES (101, 'a'), (102, 'b'), (103, 'c')");
		expect((await db.query("SELECT 1 FROM items WHERE id > 100")).rowCount).toBe(3);
		expect((await db.query("SELECT 1 FROM items WHERE id = 101 FOR UPDATE")).rowCount).toBe(1);
		expect((await db.query("SELECT 1 FROM items WHERE id = 999")).rowCount).toBe(0);
		expect((await db.query("UPDATE items SET label = 'x' WHERE id > 101")).rowCount).toBe(2);
		expect((await db.query("DELETE FROM items WHERE id > 100 RETURNING id")).rowCount).toBe(3);
	});

	test("errors keep their PostgreSQL code and constraint", async () => {
		const err: any = await db.query("INSERT INTO items (id, label) VALUES (1, 'again')").catch(e => e);
		expect(err).toBeInstanceOf(Error);
		expect(err.code).toBe("23505");
		expect(err.constraint).toBe("items_pkey");
	});

	test("a transaction that throws leaves nothing behind; one that returns commits", async () => {
		await expect(
			db.transaction(async tx => {
				await tx.query("INSERT INTO items (id, label) VALUES (2, 'two')");
				await tx.query("INSERT INTO items (id, label) VALUES (2, 'duplicate')");
			})
		).rejects.toMatchObject({ code: "23505" });
		expect((await db.query("SELECT count(*)::int AS n FROM items WHERE id = 2")).rows[0].n).toBe(0);
		const result = await db.transaction(async tx => {
			await tx.query("INSERT INTO items (id, label) VALUES (3, 'three')");
			return (await tx.query("SELECT label FROM items WHERE id = 3")).rows[0].label;
		});
		expect(result).toBe("three");
		expect((await db.query("SELECT label FROM items WHERE id = 3")).rows[0].label).toBe("three");
	});

	test("concurrent transactions run one at a time: no lost update", async () => {
		await db.query("INSERT INTO items (id, label) VALUES (10, '0')");
		await Promise.all(
			Array.from({ length: 20 }, () =>
				db.transaction(async tx => {
					const n = Number((await tx.query("SELECT label FROM items WHERE id = 10")).rows[0].label);
					await new Promise(r => setTimeout(r, 1));
					await tx.query("UPDATE items SET label = $1 WHERE id = 10", [String(n + 1)]);
				})
			)
		);
		expect((await db.query("SELECT label FROM items WHERE id = 10")).rows[0].label).toBe("20");
	});

	test("a long query does not block the event loop", async () => {
		let ticks = 0;
		const timer = setInterval(() => ticks++, 5);
		try {
			await db.query("SELECT count(*) FROM generate_series(1, 3000000)");
		} finally {
			clearInterval(timer);
		}
		// In-process, the WebAssembly would hold the thread for the whole query and no tick would run.
		expect(ticks).toBeGreaterThan(3);
	}, 60_000);

	test("the directory belongs to one opener: a second is refused by name until the first closes", async () => {
		await expect(openPGlite(dataDir)).rejects.toThrow(`is in use by process ${process.pid}`);
		await inTempDir("cide-pglite-lock-", async other => {
			const first = await openPGlite(other);
			await first.close();
			const again = await openPGlite(other);
			expect((await again.query("SELECT 1 AS one")).rows[0].one).toBe(1);
			await again.close();
		});
	}, 60_000);

	test("a lock left by a process that no longer runs is taken over", async () => {
		await inTempDir("cide-pglite-stale-", async other => {
			const gone = spawnSync(process.execPath, ["-e", ""]).pid;
			fs.mkdirSync(path.join(other, "pglite"), { recursive: true });
			fs.writeFileSync(path.join(other, "pglite", "cide.lock"), String(gone));
			const db2 = await openPGlite(other);
			expect(fs.readFileSync(path.join(other, "pglite", "cide.lock"), "utf8")).toBe(String(process.pid));
			await db2.close();
			expect(fs.existsSync(path.join(other, "pglite", "cide.lock"))).toBe(false);
		});
	}, 60_000);

	test("a lock naming this process but not held by it (a container's pid 1 after a kill) is stale", async () => {
		await inTempDir("cide-pglite-pid1-", async other => {
			fs.mkdirSync(path.join(other, "pglite"), { recursive: true });
			fs.writeFileSync(path.join(other, "pglite", "cide.lock"), String(process.pid));
			const db2 = await openPGlite(other);
			await expect(openPGlite(other)).rejects.toThrow(`is in use by process ${process.pid}`);
			await db2.close();
		});
	}, 60_000);

	test("a worker that dies fails the waiting and later calls with a clear error", async () => {
		await inTempDir("cide-pglite-dead-", async other => {
			const db2 = await openPGlite(other);
			const pending = db2.query("SELECT pg_sleep(1)");
			await (db2 as any).worker.terminate();
			await expect(pending).rejects.toThrow("the embedded database stopped");
			await expect(db2.query("SELECT 1")).rejects.toThrow("the embedded database stopped");
			await db2.close();
		});
	}, 60_000);

	// PGlite has no autovacuum of its own (one process, no background workers): the worker runs autovacuum's rule.
	test("tables past autovacuum's thresholds are vacuumed and analyzed; the rest are left alone", async () => {
		await inTempDir("cide-pglite-vacuum-", async other => {
			const db2 = await openPGlite(other, undefined, { vacuumEveryMs: 200 });
			try {
				await db2.exec(
					"CREATE TABLE churn (id int PRIMARY KEY, n int); CREATE TABLE calm (id int PRIMARY KEY, n int)"
				);
				await db2.query("INSERT INTO churn SELECT g, 0 FROM generate_series(1, 2000) g");
				await db2.query("INSERT INTO calm SELECT g, 0 FROM generate_series(1, 10) g");
				await db2.query("UPDATE churn SET n = n + 1");
				await db2.query("UPDATE calm SET n = n + 1");
				const stats = async (table: string) =>
					(
						await db2.query(
							"SELECT n_dead_tup, last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = $1",
							[table]
						)
					).rows[0];
				const churn = await waitUntil(
					"churn to be vacuumed",
					() => stats("churn"),
					t => !!t.last_vacuum,
					30_000
				);
				expect(churn.last_vacuum).not.toBeNull();
				expect(churn.last_analyze).not.toBeNull();
				expect(Number(churn.n_dead_tup)).toBe(0);
				// 10 dead rows are under the threshold (50 + 20% of the table).
				await new Promise(r => setTimeout(r, 500));
				const calm = await stats("calm");
				expect(calm.last_vacuum).toBeNull();
				expect(Number(calm.n_dead_tup)).toBe(10);
			} finally {
				await db2.close();
			}
		});
	}, 90_000);

	test("a pass waits for an open transaction (VACUUM cannot run inside one) and leaves it whole", async () => {
		await inTempDir("cide-pglite-vacuum-tx-", async other => {
			const db2 = await openPGlite(other, undefined, { vacuumEveryMs: 50 });
			try {
				await db2.exec("CREATE TABLE held (id int PRIMARY KEY, n int)");
				await db2.transaction(async tx => {
					await tx.query("INSERT INTO held SELECT g, 0 FROM generate_series(1, 1000) g");
					await tx.query("UPDATE held SET n = 1");
					// Passes fall due meanwhile; none may run in this transaction's session.
					await new Promise(r => setTimeout(r, 400));
					await tx.query("UPDATE held SET n = 2");
				});
				expect((await db2.query("SELECT count(*)::int AS c, min(n) AS n FROM held")).rows[0]).toEqual({
					c: 1000,
					n: 2
				});
				const held = await waitUntil(
					"held to be vacuumed",
					() => db2.query("SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'held'"),
					r => !!r.rows[0].last_vacuum,
					30_000
				);
				expect(held.rows[0].last_vacuum).not.toBeNull();
			} finally {
				await db2.close();
			}
		});
	}, 90_000);
});
