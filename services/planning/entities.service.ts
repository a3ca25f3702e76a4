// planning-entities: every entity kind of planning (projects, tasks, roadmaps, issues, releases, architecture
// decisions, dependencies, incidents, environments, debt, reviews, modules) through one CRUD, driven by the kinds
// table (planning.kinds.ts): the common columns here, each kind's own `fields` validated by its declaration.
// Writes run with the outbox so gating (planning.gating.ts) and its events commit with the change.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import type { Queryable } from "../../lib/db";
import { getDb } from "../../lib/db";
import { PgAdapter } from "../../lib/db/pg-adapter";
import { invalid } from "../../lib/errors";
import { listOf, named, rowOf } from "../../lib/response";
import { checkTenantReferences, DbMixin, type DbService } from "../../mixins/db.mixin";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import { checkFields, CLOSED_GROUPS, KIND_NAMES, type Kind } from "./planning.kinds";
import { announceUnblocked, blockedBy, lockEntity, openBlockers, stateGroup } from "./planning.gating";
import { ensureStates } from "./states.service";
import "./planning.events";

type Row = Record<string, any>;
interface Self extends DbService {
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
	writeChecked(ctx: Context, id: string | null, values: Row): Promise<Row>;
}

const COLUMNS = [
	"id",
	"organization_id",
	"kind",
	"title",
	"description",
	"state_id",
	"parent_id",
	"start_date",
	"due_date",
	"position",
	"fields",
	"article_ids",
	"plan_id",
	"created_at",
	"updated_at"
];
const REFERENCES = {
	state_id: { table: "planning_states", entity: "state" },
	parent_id: { table: "planning_entities", entity: "parent" },
	plan_id: { table: "planning_plans", entity: "plan" }
};
const date = { type: "date", convert: true, nullable: true, optional: true };
const WRITABLE = {
	kind: { type: "enum", values: KIND_NAMES, label: "kind" },
	title: { type: "string", min: 1, max: 300, trim: true, label: "title" },
	description: { type: "string", max: 20000, optional: true },
	state_id: { type: "uuid", nullable: true, optional: true },
	parent_id: { type: "uuid", nullable: true, optional: true },
	start_date: date,
	due_date: date,
	position: { type: "number", optional: true },
	fields: { type: "object", optional: true }
};
const ENTITY = {
	start_date: "date|nullable",
	due_date: "date|nullable",
	fields: "object",
	article_ids: { type: "array", items: "uuid" },
	state_id: "uuid|nullable",
	parent_id: "uuid|nullable",
	// The plan a generated task was made for (planning-plans.generate); its tasks: planning-plans.tasks.
	plan_id: "uuid|nullable",
	position: "number"
};
// An entity as clients read it, for other actions that answer with entities (the same shape DbMixin names).
export const ENTITY_ROW = named("PlanningEntity", rowOf(COLUMNS, WRITABLE, ENTITY));
const entities = new PgAdapter({ table: "planning_entities", columns: COLUMNS });

async function checkParent(db: Queryable, id: string | null, parentId: string | null | undefined) {
	if (!parentId) return;
	if (id && parentId === id) throw invalid("parent_id", "an entity cannot be its own parent");
	if (!id) return;
	// The new parent's ancestors must not include the entity: that would close a loop.
	const { rows } = await db.query(
		`WITH RECURSIVE up(id, parent_id) AS (
			SELECT id, parent_id FROM planning_entities WHERE id = $1
			UNION SELECT e.id, e.parent_id FROM planning_entities e JOIN up ON e.id = up.parent_id)
		 SELECT 1 FROM up WHERE id = $2 LIMIT 1`,
		[parentId, id]
	);
	if (rows.length) throw invalid("parent_id", "would make a cycle of parents");
}

async function checkUnblocked(tx: Queryable, id: string) {
	await lockEntity(tx, id);
	const open = await openBlockers(tx, id);
	if (open.length)
		throw invalid(
			"state_id",
			`blocked by ${open.map(b => `"${b.title}" (${b.id})`).join(", ")}: finish or cancel it first`
		);
}

const asDate = (v: unknown) => (v == null ? null : new Date(v as string | Date).getTime());

// The one way an entity is written, in the caller's transaction (the service's create and update, and the tasks of a
// generated plan): create (`before` null) or update of `before`, with the kind's fields, dates, references, parent
// and gating checked and the default state given, and planning.entity.created or any planning.task.unblocked its new
// state releases published with it. The caller drops the cached answers and announces the change after the commit.
export async function writeEntity(
	tx: Queryable,
	publish: Publish,
	org: string,
	before: Row | null,
	values: Row
): Promise<Row> {
	const id = (before?.id as string | undefined) ?? null;
	await checkTenantReferences(tx, org, REFERENCES, values);
	const kind = (values.kind ?? before?.kind) as Kind;
	// A changed kind re-checks the stored fields against its own declaration.
	if (values.fields !== undefined || values.kind !== undefined || !before)
		values.fields = checkFields(kind, values.fields ?? before?.fields);
	const start = values.start_date !== undefined ? values.start_date : before?.start_date;
	const due = values.due_date !== undefined ? values.due_date : before?.due_date;
	if (start != null && due != null && asDate(due)! <= asDate(start)!)
		throw invalid("due_date", "must be after start_date");
	await checkParent(tx, id, values.parent_id);
	if (!before && values.state_id === undefined) {
		await ensureStates(tx, org);
		const { rows } = await tx.query<{ id: string }>(
			`SELECT id FROM planning_states WHERE organization_id = $1 AND "group" = 'backlog'
			 ORDER BY position LIMIT 1`,
			[org]
		);
		values.state_id = rows[0]?.id ?? null;
	}
	const newGroup = values.state_id !== undefined ? await stateGroup(tx, values.state_id) : undefined;
	const oldGroup = before ? await stateGroup(tx, before.state_id as string | null) : null;
	const adapter = entities.withTx(tx);
	const dueAfterStart = (e: any) => {
		if (e?.code === "23514") throw invalid("due_date", "must be after start_date");
		throw e;
	};
	if (!id) {
		const written: Row = await adapter.insert({ ...values, organization_id: org }).catch(dueAfterStart);
		publish("planning.entity.created", {
			organizationId: org,
			entityId: written.id,
			kind: written.kind,
			title: written.title
		});
		return written;
	}
	// Gating under the task's row lock, which adding a `blocks` relation to it also takes: a blocker added while the
	// task starts is either seen here or added after the start committed.
	if (newGroup === "started" && oldGroup !== "started") await checkUnblocked(tx, id);
	const [written] = await adapter.updateMany({ id, organization_id: org }, { $set: values }).catch(dueAfterStart);
	if (newGroup && CLOSED_GROUPS.includes(newGroup as never) && !CLOSED_GROUPS.includes(oldGroup as never))
		await announceUnblocked(tx, publish, org, await blockedBy(tx, id));
	return written;
}

const PlanningEntitiesService: ServiceSchema = {
	name: "planning-entities",
	mixins: [
		DbMixin({
			table: "planning_entities",
			columns: COLUMNS,
			writable: WRITABLE,
			tenant: true,
			searchFields: ["title", "description"],
			permissions: { read: "planning:read", write: "planning:write" },
			rest: "/planning/entities",
			entityName: "planning entity",
			schemaName: "PlanningEntity",
			references: REFERENCES,
			entity: ENTITY,
			live: { label: "title" }
		}),
		EventsMixin
	],
	actions: {
		create: {
			async handler(this: Self, ctx: Context<Row>) {
				return this.writeChecked(ctx, null, ctx.params);
			}
		},
		update: {
			async handler(this: Self, ctx: Context<Row>) {
				const { id, ...changes } = ctx.params;
				return this.writeChecked(ctx, id, changes);
			}
		},
		remove: {
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const org = this.tenantId(ctx)!;
				const doc = await this.findScoped(ctx, ctx.params.id);
				await this.withEvents(async (tx, publish) => {
					// Who it blocked is read before the delete cascades its relations away.
					const released = await blockedBy(tx, doc.id as string);
					await tx.query("DELETE FROM planning_entities WHERE id = $1 AND organization_id = $2", [
						doc.id,
						org
					]);
					await announceUnblocked(tx, publish, org, released);
				});
				const json = await this.transformDocuments(ctx, {}, doc);
				await this.entityChanged("removed", json, ctx, doc);
				return json;
			}
		},
		// The open entities blocking this one: a non-empty list means it cannot start.
		blockers: {
			rest: "GET /:id/blockers",
			permission: "planning:read",
			params: { id: "string" },
			response: listOf({ type: "object", props: { id: "uuid", title: "string" } }),
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const doc = await this.findScoped(ctx, ctx.params.id);
				return openBlockers(await getDb(), doc.id as string);
			}
		}
	},
	methods: {
		// Create (id null) or update, in a transaction of its own; then the caches and open pages are told.
		async writeChecked(this: Self, ctx: Context, id: string | null, values: Row) {
			const org = this.tenantId(ctx)!;
			const before = id ? await this.findScoped(ctx, id) : null;
			const row = await this.withEvents((tx, publish) => writeEntity(tx, publish, org, before, values));
			const json = await this.transformDocuments(ctx, {}, row);
			await this.entityChanged(id ? "updated" : "created", json, ctx, row);
			return json;
		}
	}
};
export default PlanningEntitiesService;
