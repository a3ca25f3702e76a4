// planning-plans: plans with ordered steps of the kinds the execution engine runs (AI completion by prompt, agent
// run, MCP tool call, HTTP webhook, manual approval, sub-workflow), each step's config validated for its kind.
// An approval is of one revision: every edit (by a person or by AI) bumps the revision, so an approved plan that is
// edited is no longer runnable until it is approved again.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import type { Queryable } from "../../lib/db";
import { authOf } from "../../lib/authz";
import { getDb } from "../../lib/db";
import { conflict } from "../../lib/errors";
import { listOf } from "../../lib/response";
import { DbMixin, type DbService } from "../../mixins/db.mixin";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import { makeEvent, writeManyToOutbox } from "../../lib/events/outbox";
import type { ExecutionEvent } from "../execution/execution.events";
import "../execution/execution.events";
import { checkStepConfig, STEP_KIND_NAMES, type StepKind } from "./planning.kinds";
import { generateActions } from "./generate";
import { ENTITY_ROW } from "./entities.service";
import "./planning.events";

type Row = Record<string, any>;
type Step = { kind: StepKind; title: string; config?: Record<string, unknown> };
interface Self extends DbService {
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
}

const STEP = {
	type: "object",
	strict: true,
	props: {
		kind: { type: "enum", values: STEP_KIND_NAMES },
		title: { type: "string", min: 1, max: 300, trim: true },
		config: { type: "object", optional: true }
	}
};
const stepsJson = (steps: Step[]) =>
	JSON.stringify(
		steps.map((s, i) => ({ kind: s.kind, title: s.title, config: checkStepConfig(i, s.kind, s.config) }))
	);
const runnableOf = (row: Row) =>
	row.approved_revision === row.revision
		? { runnable: true, reason: null }
		: {
				runnable: false,
				reason:
					row.approved_revision == null
						? "the plan is not approved"
						: `revision ${row.revision} is not approved (approved: ${row.approved_revision}): approve it again`
			};

const PlanningPlansService: ServiceSchema = {
	name: "planning-plans",
	mixins: [
		DbMixin({
			table: "planning_plans",
			columns: [
				"id",
				"organization_id",
				"title",
				"goal",
				"steps",
				"revision",
				"approved_revision",
				"approved_by",
				"approved_at",
				"created_at",
				"updated_at"
			],
			writable: {
				title: { type: "string", min: 1, max: 300, trim: true, label: "title" },
				goal: { type: "string", max: 20000, optional: true },
				steps: { type: "array", items: STEP, max: 200, optional: true }
			},
			tenant: true,
			searchFields: ["title", "goal"],
			permissions: { read: "planning:read", write: "planning:write" },
			rest: "/planning/plans",
			entityName: "plan",
			schemaName: "PlanningPlan",
			entity: {
				steps: {
					type: "array",
					items: { type: "object", props: { kind: "string", title: "string", config: "object" } }
				},
				revision: "number|integer",
				approved_revision: "number|integer|nullable",
				approved_by: "uuid|nullable"
			},
			live: { label: "title" }
		}),
		EventsMixin
	],
	// A plan run's outcome, once per run (the execution module publishes it once; the consumer's transaction records
	// the event id, so a redelivery publishes nothing again).
	channels: {
		"execution.events": {
			group: "planning",
			async handler(event: ExecutionEvent, tx: Queryable) {
				if (event.type !== "execution.plan.executed") return;
				await writeManyToOutbox(tx, [
					makeEvent("planning.plan.executed", {
						organizationId: event.organizationId,
						planId: event.planId,
						runId: event.runId,
						status: event.status
					})
				]);
			}
		}
	},

	actions: {
		create: {
			async handler(this: Self, ctx: Context<{ title: string; goal?: string; steps?: Step[] }>) {
				const org = this.tenantId(ctx)!;
				const values = { ...ctx.params, steps: stepsJson(ctx.params.steps ?? []), organization_id: org };
				const row = await this.withEvents(async (tx, publish) => {
					const r: Row = await this.adapter.withTx(tx).insert(values);
					publish("planning.plan.created", { organizationId: org, planId: r.id, title: r.title });
					return r;
				});
				const json = await this.transformDocuments(ctx, {}, row);
				await this.entityChanged("created", json, ctx, row);
				return json;
			}
		},
		// Any edit is a new revision: an approval given before it no longer covers the plan.
		update: {
			async handler(this: Self, ctx: Context<{ id: string; title?: string; goal?: string; steps?: Step[] }>) {
				const { id, ...changes } = ctx.params;
				await this.findScoped(ctx, id);
				const set: Row = { ...changes };
				if (changes.steps) set.steps = stepsJson(changes.steps);
				const { rows } = await (
					await getDb()
				).query<Row>(
					`UPDATE planning_plans SET ${Object.keys(set)
						.map((k, i) => `"${k}" = $${i + 3}`)
						.concat(["revision = revision + 1", "updated_at = now()"])
						.join(", ")} WHERE id = $1 AND organization_id = $2 RETURNING *`,
					[id, this.tenantId(ctx), ...Object.values(set)]
				);
				const json = await this.transformDocuments(ctx, {}, rows[0]);
				await this.entityChanged("updated", json, ctx, rows[0]);
				return json;
			}
		},
		// Approves the revision the caller saw (`revision`): approving a plan edited since is refused (409).
		approve: {
			rest: "POST /:id/approve",
			permission: "planning:manage",
			params: { id: "string", revision: { type: "number", integer: true, min: 1 } },
			response: "object",
			async handler(this: Self, ctx: Context<{ id: string; revision: number }>) {
				const org = this.tenantId(ctx)!;
				await this.findScoped(ctx, ctx.params.id);
				const userId = authOf(ctx)?.userId ?? null;
				const row = await this.withEvents(async (tx, publish) => {
					const { rows } = await tx.query<Row>(
						`UPDATE planning_plans SET approved_revision = revision, approved_by = $3, approved_at = now()
						 WHERE id = $1 AND organization_id = $2 AND revision = $4 RETURNING *`,
						[ctx.params.id, org, userId, ctx.params.revision]
					);
					if (!rows.length)
						throw conflict("the plan was edited since: review it and approve again", "revision");
					publish("planning.plan.approved", {
						organizationId: org,
						planId: rows[0].id,
						revision: rows[0].revision,
						approvedBy: userId
					});
					return rows[0];
				});
				const json = await this.transformDocuments(ctx, {}, row);
				await this.entityChanged("updated", json, ctx, row);
				return json;
			}
		},
		// Whether the plan may run now: only the approved revision may (the execution engine asks this first).
		runnable: {
			rest: "GET /:id/runnable",
			permission: "planning:read",
			params: { id: "string" },
			response: { type: "object", props: { runnable: "boolean", reason: "string|nullable" } },
			async handler(this: Self, ctx: Context<{ id: string }>) {
				return runnableOf(await this.findScoped(ctx, ctx.params.id));
			}
		},
		// The tasks generated for the plan, in the order the plan gave them.
		tasks: {
			rest: "GET /:id/tasks",
			permission: "planning:read",
			params: { id: "string" },
			response: listOf(ENTITY_ROW),
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const plan = await this.findScoped(ctx, ctx.params.id);
				return ctx.call("planning-entities.find", { query: { plan_id: plan.id }, sort: "position" });
			}
		},
		...generateActions
	}
};
export default PlanningPlansService;
