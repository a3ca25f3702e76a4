// A moleculer-db adapter over the platform's driver: parameterized SQL on whitelisted columns, RETURNING rows,
// the same behaviour on PostgreSQL and PGlite. The schema belongs to the SQL migrations; this never creates tables.
import { acquireDb, releaseDb, Db, Queryable } from "./index";
import { invalid } from "../errors";

export type Query = Record<string, unknown>;

export interface FindParams {
	query?: Query;
	limit?: number | null;
	offset?: number | null;
	sort?: string | string[];
	search?: string;
	searchFields?: string | string[];
}

export interface PgAdapterOptions {
	table: string;
	columns: string[];
	idField?: string;
	// jsonb columns that may hold a JSON array (other arrays are PostgreSQL arrays).
	jsonColumns?: string[];
}

const IDENT = /^[a-z_][a-z0-9_]*$/;

// An ILIKE pattern matching `text` anywhere, its own % _ and \\ taken literally.
export function likeContains(text: string): string {
	return `%${text.replace(/[\\%_]/g, c => "\\" + c)}%`;
}

export class PgAdapter {
	readonly table: string;
	readonly columns: Set<string>;
	readonly idField: string;
	private readonly selectList: string;
	private readonly jsonColumns: Set<string>;
	private db?: Db;
	private conn?: Queryable;

	constructor(
		private opts: PgAdapterOptions,
		conn?: Queryable
	) {
		for (const c of [opts.table, ...opts.columns])
			if (!IDENT.test(c)) throw new Error(`invalid SQL identifier "${c}"`);
		this.table = opts.table;
		this.columns = new Set(opts.columns);
		this.idField = opts.idField ?? "id";
		this.selectList = opts.columns.map(c => `"${c}"`).join(", ");
		this.jsonColumns = new Set(opts.jsonColumns ?? []);
		this.conn = conn;
	}

	init(_broker: unknown, _service: unknown) {}

	async connect() {
		this.db = await acquireDb();
	}

	async disconnect() {
		if (this.db) {
			this.db = undefined;
			await releaseDb();
		}
	}

	// The same adapter bound to a transaction: every query runs on tx.
	withTx(tx: Queryable): PgAdapter {
		const bound = new PgAdapter(this.opts, tx);
		bound.db = this.db;
		return bound;
	}

	private get q(): Queryable {
		const q = this.conn ?? this.db;
		if (!q) throw new Error(`adapter for "${this.table}" is not connected`);
		return q;
	}

	private column(name: string): string {
		// A client-supplied query or sort naming a column that does not exist is a 422, never SQL.
		if (!this.columns.has(name)) throw invalid(name, `unknown column on ${this.table}`);
		return `"${name}"`;
	}

	private where(query: Query = {}, params: unknown[], search?: { text: string; fields: string[] }): string {
		const parts: string[] = [];
		for (const [key, value] of Object.entries(query)) {
			if (value === undefined) continue;
			const col = this.column(key);
			if (value === null) parts.push(`${col} IS NULL`);
			else if (Array.isArray(value)) {
				params.push(value);
				parts.push(`${col} = ANY($${params.length})`);
			} else {
				params.push(value);
				parts.push(`${col} = $${params.length}`);
			}
		}
		if (search && search.text) {
			params.push(likeContains(search.text));
			const n = params.length;
			parts.push("(" + search.fields.map(f => `${this.column(f)}::text ILIKE $${n}`).join(" OR ") + ")");
		}
		return parts.length ? " WHERE " + parts.join(" AND ") : "";
	}

	private orderBy(sort?: string | string[]): string {
		if (!sort) return "";
		const fields = (Array.isArray(sort) ? sort : sort.split(/[,\s]+/)).filter(Boolean);
		if (!fields.length) return "";
		return (
			" ORDER BY " +
			fields
				.map(f => (f.startsWith("-") ? `${this.column(f.slice(1))} DESC` : `${this.column(f)} ASC`))
				.join(", ")
		);
	}

	async find(params: FindParams = {}) {
		const values: unknown[] = [];
		const searchFields =
			typeof params.searchFields === "string" ? params.searchFields.split(/[,\s]+/) : params.searchFields;
		let sql =
			`SELECT * FROM ${this.table}` +
			this.where(
				params.query,
				values,
				params.search ? { text: params.search, fields: searchFields ?? [] } : undefined
			);
		sql += this.orderBy(params.sort);
		if (params.limit != null) sql += ` LIMIT ${Math.max(0, Math.floor(params.limit))}`;
		if (params.offset != null) sql += ` OFFSET ${Math.max(0, Math.floor(params.offset))}`;
		return (await this.q.query(sql, values)).rows;
	}

	// The hot path of get/update/remove (findScoped): a prepared statement over the named columns. Its text depends
	// only on the query's keys (arrays use ANY), so each table prepares a handful of them at most.
	async findOne(query: Query) {
		const values: unknown[] = [];
		const { rows } = await this.q.query(
			`SELECT ${this.selectList} FROM ${this.table}${this.where(query, values)} LIMIT 1`,
			values,
			{ prepare: true }
		);
		return rows[0] ?? null;
	}

	findById(id: unknown) {
		return this.findOne({ [this.idField]: id });
	}

	findByIds(ids: unknown[]) {
		return this.find({ query: { [this.idField]: ids } });
	}

	async count(params: FindParams = {}) {
		const values: unknown[] = [];
		const searchFields =
			typeof params.searchFields === "string" ? params.searchFields.split(/[,\s]+/) : params.searchFields;
		const { rows } = await this.q.query<{ n: number }>(
			`SELECT count(*)::int AS n FROM ${this.table}` +
				this.where(
					params.query,
					values,
					params.search ? { text: params.search, fields: searchFields ?? [] } : undefined
				),
			values
		);
		return rows[0].n;
	}

	async insert(entity: Record<string, unknown>) {
		const keys = Object.keys(entity).filter(k => entity[k] !== undefined);
		const cols = keys.map(k => this.column(k));
		const values = keys.map(k => this.toDb(k, entity[k]));
		const sql = keys.length
			? `INSERT INTO ${this.table} (${cols.join(", ")}) VALUES (${keys.map((_, i) => `$${i + 1}`).join(", ")}) RETURNING *`
			: `INSERT INTO ${this.table} DEFAULT VALUES RETURNING *`;
		return (await this.q.query(sql, values)).rows[0];
	}

	async insertMany(entities: Record<string, unknown>[]) {
		const out = [];
		for (const e of entities) out.push(await this.insert(e));
		return out;
	}

	// moleculer-db passes Mongo-style updates: { $set: {...} }.
	async updateMany(query: Query, update: { $set?: Record<string, unknown> }) {
		const set = update.$set ?? {};
		const keys = Object.keys(set).filter(k => set[k] !== undefined);
		const values: unknown[] = keys.map(k => this.toDb(k, set[k]));
		const assignments = keys.map((k, i) => `${this.column(k)} = $${i + 1}`);
		if (this.columns.has("updated_at") && !keys.includes("updated_at")) assignments.push(`"updated_at" = now()`);
		if (!assignments.length) return this.find({ query });
		const sql = `UPDATE ${this.table} SET ${assignments.join(", ")}${this.where(query, values)} RETURNING *`;
		return (await this.q.query(sql, values)).rows;
	}

	async updateById(id: unknown, update: { $set?: Record<string, unknown> }) {
		const rows = await this.updateMany({ [this.idField]: id }, update);
		return rows[0] ?? null;
	}

	async removeMany(query: Query) {
		const values: unknown[] = [];
		const { rowCount } = await this.q.query(`DELETE FROM ${this.table}${this.where(query, values)}`, values);
		return rowCount;
	}

	async removeById(id: unknown) {
		const values: unknown[] = [id];
		const { rows } = await this.q.query(
			`DELETE FROM ${this.table} WHERE ${this.column(this.idField)} = $1 RETURNING *`,
			values
		);
		return rows[0] ?? null;
	}

	async clear() {
		const { rowCount } = await this.q.query(`DELETE FROM ${this.table}`);
		return rowCount;
	}

	entityToObject(entity: unknown) {
		return entity;
	}

	beforeSaveTransformID(entity: Record<string, unknown>, _idField: string) {
		return entity;
	}

	afterRetrieveTransformID(entity: Record<string, unknown>, _idField: string) {
		return entity;
	}

	// Objects go to jsonb columns as JSON text (both engines accept that); arrays go to PostgreSQL array columns
	// as they are, unless the column is listed as JSON.
	private toDb(column: string, value: unknown) {
		if (value === null || typeof value !== "object" || value instanceof Date || Buffer.isBuffer(value))
			return value;
		if (Array.isArray(value) && !this.jsonColumns.has(column)) return value;
		return JSON.stringify(value);
	}
}
