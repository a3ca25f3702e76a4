// Dependency gating: a task with open blockers (a `blocks` relation from an entity whose state is not in a closed
// group) cannot move to a started state, and is announced ready (planning.task.unblocked) the moment its last open
// blocker completes, is cancelled, is deleted or its relation is removed. Everything here runs inside the writer's
// transaction, so the event is in the outbox exactly when the change is committed.
import type { Queryable } from "../../lib/db";
import type { Publish } from "../../mixins/events.mixin";
import { CLOSED_GROUPS } from "./planning.kinds";

const CLOSED = `('${CLOSED_GROUPS.join("','")}')`;

export async function openBlockers(db: Queryable, entityId: string): Promise<{ id: string; title: string }[]> {
	const { rows } = await db.query<{ id: string; title: string }>(
		`SELECT e.id, e.title FROM planning_relations r
		 JOIN planning_entities e ON e.id = r.source_id
		 LEFT JOIN planning_states s ON s.id = e.state_id
		 WHERE r.kind = 'blocks' AND r.target_id = $1 AND (s."group" IS NULL OR s."group" NOT IN ${CLOSED})
		 ORDER BY e.title`,
		[entityId]
	);
	return rows;
}

// The lock gating takes on a task: held by a move into a started state while it checks for open blockers, and by
// the insert of a `blocks` relation onto it, so one of the two always sees the other's committed result. NO KEY
// UPDATE conflicts with itself but not with the key-share locks foreign-key checks take, so two relations inserted
// in opposite directions at once cannot deadlock on each other's endpoints.
export async function lockEntity(tx: Queryable, entityId: string): Promise<void> {
	await tx.query("SELECT 1 FROM planning_entities WHERE id = $1 FOR NO KEY UPDATE", [entityId]);
}

// The entities `blockerId` blocks (read before a change that may release them).
export async function blockedBy(db: Queryable, blockerId: string): Promise<string[]> {
	const { rows } = await db.query<{ target_id: string }>(
		"SELECT target_id FROM planning_relations WHERE kind = 'blocks' AND source_id = $1",
		[blockerId]
	);
	return rows.map(r => r.target_id);
}

// After the change: each candidate that now has no open blocker (and is itself still open) is announced ready.
export async function announceUnblocked(
	db: Queryable,
	publish: Publish,
	organizationId: string,
	candidates: string[]
): Promise<string[]> {
	const released: string[] = [];
	for (const id of [...new Set(candidates)]) {
		const { rows } = await db.query<{ title: string; grp: string | null }>(
			`SELECT e.title, s."group" AS grp FROM planning_entities e LEFT JOIN planning_states s ON s.id = e.state_id
			 WHERE e.id = $1`,
			[id]
		);
		if (!rows.length || (rows[0].grp && CLOSED_GROUPS.includes(rows[0].grp as never))) continue;
		if ((await openBlockers(db, id)).length) continue;
		publish("planning.task.unblocked", { organizationId, entityId: id, title: rows[0].title });
		released.push(id);
	}
	return released;
}

export async function stateGroup(db: Queryable, stateId: string | null | undefined): Promise<string | null> {
	if (!stateId) return null;
	const { rows } = await db.query<{ group: string }>('SELECT "group" FROM planning_states WHERE id = $1', [stateId]);
	return rows[0]?.group ?? null;
}
