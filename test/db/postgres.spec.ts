// The PostgreSQL driver survives connections that die under it: a backend killed while its client is checked out
// (between a transaction's queries) fails that transaction, never the process, and the pool carries on.
import { describeWith, createTestDatabase } from "../helpers/infra";
import { openPostgres } from "../../lib/db/driver";

describeWith(["postgres"])("PostgreSQL driver", () => {
	test("a connection killed between a transaction's queries fails the transaction, not the process", async () => {
		const db = await createTestDatabase();
		const conn = await openPostgres(db.url, 2);
		try {
			await conn.exec("CREATE TABLE t (n int)");
			const outcome = conn.transaction(async tx => {
				await tx.query("INSERT INTO t VALUES (1)");
				const pid = (await tx.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
				await conn.query("SELECT pg_terminate_backend($1)", [pid]);
				// The server's notice of the kill reaches the idle, checked-out client before its next query.
				await new Promise(r => setTimeout(r, 200));
				await tx.query("INSERT INTO t VALUES (2)");
			});
			await expect(outcome).rejects.toThrow();
			expect((await conn.query("SELECT count(*)::int AS n FROM t")).rows[0].n).toBe(0);
		} finally {
			await conn.close();
			await db.drop();
		}
	}, 30_000);
});
