// BENCH_NO_PREPARE=1: PgAdapter.findOne as it was before prepared statements (SELECT *, parsed and planned on every
// call), to measure before/after on the same code base. Imported by the bench's node processes only.
import { PgAdapter } from "../lib/db/pg-adapter";

if (process.env.BENCH_NO_PREPARE)
	(PgAdapter.prototype as any).findOne = async function (this: any, query: Record<string, unknown>) {
		const values: unknown[] = [];
		const { rows } = await this.q.query(`SELECT * FROM ${this.table}${this.where(query, values)} LIMIT 1`, values);
		return rows[0] ?? null;
	};
