// Idempotency keys of module actions: a call repeated with the key of one that succeeded within the retention window
// gets the first call's answer instead of doing the work again (an execution step sent again after the replica that
// sent it died). Each module keeps its answers in its own table, keyed per organization:
// (organization_id uuid, key text, result jsonb, created_at timestamptz, PRIMARY KEY (organization_id, key)).
// A failed call stores nothing, so it may be tried again with the same key.
import { getDb } from "./db";

export const IDEMPOTENCY_RETENTION_HOURS = 24;

// The action's parameter; a key is the caller's (e.g. `<run>:<position>` of an execution step).
export const idempotencyKeyParam = { type: "string", min: 1, max: 200, optional: true, label: "Idempotency key" };

const TABLE = /^[a-z_][a-z0-9_]*$/;

export async function idempotent<T>(
	table: string,
	organizationId: string,
	key: string | undefined,
	fn: () => Promise<T>
): Promise<T> {
	if (!TABLE.test(table)) throw new Error(`idempotent: "${table}" is not a table name`);
	if (!key) return fn();
	const db = await getDb();
	const fresh = `created_at > now() - interval '${IDEMPOTENCY_RETENTION_HOURS} hours'`;
	const found = await db.query<{ result: T }>(
		`SELECT result FROM ${table} WHERE organization_id = $1 AND key = $2 AND ${fresh}`,
		[organizationId, key]
	);
	if (found.rows[0]) return found.rows[0].result;
	const result = await fn();
	// Two calls with one key side by side: the first answer stored is the one every later call gets. A key past the
	// window is taken over by the new answer.
	const { rows } = await db.query<{ result: T }>(
		`INSERT INTO ${table} AS k (organization_id, key, result) VALUES ($1, $2, $3::jsonb)
		ON CONFLICT (organization_id, key) DO UPDATE SET result = excluded.result, created_at = now()
		WHERE NOT (k.${fresh}) RETURNING result`,
		[organizationId, key, JSON.stringify(result ?? null)]
	);
	if (rows[0]) {
		// Now and then, the organization's answers past the window go (the window, not the table, is the promise).
		if (Math.random() < 0.01)
			await db
				.query(`DELETE FROM ${table} WHERE organization_id = $1 AND NOT (${fresh})`, [organizationId])
				.catch(() => undefined);
		return result;
	}
	const first = await db.query<{ result: T }>(`SELECT result FROM ${table} WHERE organization_id = $1 AND key = $2`, [
		organizationId,
		key
	]);
	return first.rows[0]?.result ?? result;
}
