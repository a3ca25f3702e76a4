// planning-states: the organization's workflow states, each in one of Plane's groups (backlog, unstarted, started,
// completed, cancelled). An organization's first use seeds one state per group.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb, type Queryable } from "../../lib/db";
import { DbMixin, type DbService } from "../../mixins/db.mixin";
import { DEFAULT_STATES, STATE_GROUPS } from "./planning.kinds";

// Idempotent: concurrent first calls insert the defaults once (UNIQUE (organization_id, name)).
export async function ensureStates(db: Queryable, organizationId: string): Promise<void> {
	const { rows } = await db.query("SELECT 1 FROM planning_states WHERE organization_id = $1 LIMIT 1", [
		organizationId
	]);
	if (rows.length) return;
	for (const [i, s] of DEFAULT_STATES.entries())
		await db.query(
			`INSERT INTO planning_states (organization_id, name, "group", color, position) VALUES ($1, $2, $3, $4, $5)
			 ON CONFLICT (organization_id, name) DO NOTHING`,
			[organizationId, s.name, s.group, s.color, i]
		);
}

const PlanningStatesService: ServiceSchema = {
	name: "planning-states",
	mixins: [
		DbMixin({
			table: "planning_states",
			columns: ["id", "organization_id", "name", "group", "color", "position", "created_at", "updated_at"],
			writable: {
				name: { type: "string", min: 1, max: 100, trim: true, label: "name" },
				group: { type: "enum", values: [...STATE_GROUPS], label: "group" },
				color: { type: "string", pattern: /^#[0-9a-fA-F]{6}$/, optional: true },
				position: { type: "number", integer: true, min: 0, max: 10000, optional: true }
			},
			tenant: true,
			permissions: { read: "planning:read", write: "planning:manage" },
			rest: "/planning/states",
			entityName: "state",
			schemaName: "PlanningState",
			live: true
		})
	],
	hooks: {
		before: {
			async "find|list|get|count"(this: DbService, ctx: Context) {
				const org = this.tenantId(ctx);
				if (org) await ensureStates(await getDb(), org);
			}
		}
	}
};
export default PlanningStatesService;
