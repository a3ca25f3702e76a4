// execution-runs: runs of approved plans on the durable engine (engine.ts over mixins/jobs.mixin.ts leases): start
// one from a plan's approved revision, watch its steps, approve a step that waits for a person, cancel it, roll it
// back. Whichever replica holds a run's lease drives it; a run acts as this service for its organization.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb, type Queryable } from "../../lib/db";
import { moduleSettings } from "../../lib/config";
import { authOf } from "../../lib/authz";
import { HostPolicy, type HostRule } from "../../lib/egress";
import { conflict, forbidden, invalid, notFound } from "../../lib/errors";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import { ServiceIdentityMixin, type ServiceIdentity } from "../../mixins/service-identity.mixin";
import { HousekeepingMixin } from "../../mixins/housekeeping.mixin";
import {
	insertJob,
	JobsMixin,
	kickJobs,
	resumeJob,
	type JobRow,
	type JobRun,
	type JobsService
} from "../../mixins/jobs.mixin";
import executionModule from "./execution.module";
import { childEnded, Engine, recordOutcome, stepsOf } from "./engine";
import { EXECUTION_RUNS_LIVE, runDetail, runRow, RUN_STATUSES, runView, stepView } from "./execution.responses";
import "./execution.events";
import "../planning/planning.events";

interface Self extends JobsService, ServiceIdentity {
	engine: Engine;
	resumeParked(): Promise<void>;
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
	detail(organizationId: string, id: string): Promise<{ run: ReturnType<typeof runView>; steps: unknown[] }>;
}
type PlanStep = { kind: string; title: string; config: Record<string, unknown> };
type Plan = { id: string; title: string; steps: PlanStep[]; revision: number; approved_revision: number | null };

const settings = () => moduleSettings(executionModule);

function orgOf(ctx: Context): string {
	const org = authOf(ctx)?.organizationId;
	if (!org) throw forbidden("no organization selected");
	return org;
}

async function lockedRun(tx: Queryable, organizationId: string, id: string): Promise<JobRow> {
	const { rows } = await tx.query<JobRow>(
		"SELECT * FROM execution_runs WHERE id = $1::text::uuid AND organization_id = $2 FOR UPDATE",
		[id, organizationId]
	);
	if (!rows[0]) throw notFound("plan run", "id");
	return rows[0];
}

const idParam = { type: "uuid", label: "Run" };
const MAX_DEPTH = 5;

// A workflow run's limits, kept with it: runs over either are held (parked) until a slot frees.
type Limits = { workflow: number | null; organization: number };
const ACTIVE = "status IN ('queued', 'running', 'waiting') AND NOT held AND workflow_id IS NOT NULL";

// Whether one more workflow run of the organization (and of this workflow) may go now. Called under the
// organization's workflow-runs lock, so two starts cannot both take the last slot.
async function hasSlot(tx: Queryable, organizationId: string, workflowId: string, limits: Limits) {
	const { rows } = await tx.query<{ org: number; wf: number }>(
		`SELECT count(*)::int AS org, count(*) FILTER (WHERE workflow_id = $2)::int AS wf FROM execution_runs
		WHERE organization_id = $1 AND ${ACTIVE}`,
		[organizationId, workflowId]
	);
	return rows[0].org < limits.organization && (limits.workflow == null || rows[0].wf < limits.workflow);
}
const lockWorkflowRuns = (tx: Queryable, organizationId: string) =>
	tx.query("SELECT pg_advisory_xact_lock(hashtext('execution-workflow-runs'), hashtext($1))", [organizationId]);

const graphStep = {
	type: "object",
	props: {
		position: { type: "number", integer: true, min: 0 },
		node_id: "string",
		kind: "string",
		title: "string",
		config: "object",
		depends_on: { type: "array", items: "number" },
		depends_when: { type: "record", value: "boolean" }
	}
};

const ExecutionRunsService: ServiceSchema = {
	name: "execution-runs",
	mixins: [
		EventsMixin,
		ServiceIdentityMixin,
		HousekeepingMixin("resumeParked", () => settings().pollMs, "resume parked runs"),
		JobsMixin<Self>({
			table: "execution_runs",
			handlers: {
				execute(this: Self, run: JobRun) {
					return this.engine.execute(run);
				},
				rollback(this: Self, run: JobRun) {
					return this.engine.rollback(run);
				}
			},
			settings: () => {
				const s = settings();
				return {
					perOrganization: s.runsPerOrganization,
					perReplica: s.runsPerReplica,
					leaseMs: s.leaseMs,
					pollMs: s.pollMs
				};
			},
			eventPrefix: "execution.run",
			eventData: job => ({ planId: job.plan_id ?? null, workflowId: job.workflow_id ?? null }),
			// A run cancelled, or ended by an error outside its steps, has an outcome too (published once).
			ended: (tx, job, publish, why) => recordOutcome(tx, publish, job, why),
			live: EXECUTION_RUNS_LIVE,
			// Progress events are for consumers that care about counts, not every step (the steps are in the table).
			// Open pages are told at most once a second per run, and always of its end or wait: each notice is a
			// broadcast to every node and makes every open page read the run again (at 250 ms the engine moved half
			// as many steps in bench/execution.ts).
			progressEveryMs: 5000,
			liveEveryMs: 1000
		})
	],
	settings: { rest: "/execution/runs" },

	actions: {
		list: {
			rest: "GET /",
			permission: "execution:read",
			params: {
				planId: { type: "uuid", optional: true, label: "Plan" },
				workflowId: { type: "uuid", optional: true, label: "Workflow" },
				status: { type: "enum", values: RUN_STATUSES, optional: true, label: "Status" },
				limit: {
					type: "number",
					integer: true,
					min: 1,
					max: 200,
					optional: true,
					convert: true,
					label: "Limit"
				}
			},
			response: { type: "array", items: runRow },
			async handler(ctx: Context<{ planId?: string; workflowId?: string; status?: string; limit?: number }>) {
				const { rows } = await (
					await getDb()
				).query<JobRow>(
					`SELECT * FROM execution_runs WHERE organization_id = $1 AND ($2::uuid IS NULL OR plan_id = $2)
					AND ($3::text IS NULL OR (CASE WHEN held THEN 'queued' ELSE status END) = $3) AND ($5::uuid IS NULL OR workflow_id = $5)
					ORDER BY created_at DESC, id LIMIT $4`,
					[
						orgOf(ctx),
						ctx.params.planId ?? null,
						ctx.params.status ?? null,
						ctx.params.limit ?? 50,
						ctx.params.workflowId ?? null
					]
				);
				return rows.map(runView);
			}
		},

		// The newest run of each of these workflows, in one read (the workflow list shows them beside its rows).
		latestOfWorkflows: {
			visibility: "public",
			permission: "execution:read",
			params: { workflowIds: { type: "array", items: "uuid", max: 1000, label: "Workflows" } },
			response: { type: "array", items: runRow },
			async handler(ctx: Context<{ workflowIds: string[] }>) {
				if (!ctx.params.workflowIds.length) return [];
				const { rows } = await (
					await getDb()
				).query<JobRow>(
					`SELECT r.* FROM unnest($2::uuid[]) AS w(id) CROSS JOIN LATERAL (
						SELECT * FROM execution_runs WHERE workflow_id = w.id AND organization_id = $1
						ORDER BY created_at DESC, id LIMIT 1) r`,
					[orgOf(ctx), [...new Set(ctx.params.workflowIds)]]
				);
				return rows.map(runView);
			}
		},

		get: {
			rest: "GET /:id",
			permission: "execution:read",
			params: { id: idParam },
			response: runDetail,
			handler(this: Self, ctx: Context<{ id: string }>) {
				return this.detail(orgOf(ctx), ctx.params.id);
			}
		},

		// Runs the plan's approved revision: a plan never approved, or edited since, is refused (409 on planId).
		start: {
			rest: "POST /",
			permission: "execution:run",
			params: { planId: { type: "uuid", label: "Plan" } },
			response: runRow,
			async handler(this: Self, ctx: Context<{ planId: string }>) {
				const organizationId = orgOf(ctx);
				// Read past the cache: the approval is checked on the row as it is now.
				const plan = (await ctx.call(
					"planning-plans.get",
					{ id: ctx.params.planId },
					{
						meta: { $cache: false }
					}
				)) as Plan;
				if (plan.approved_revision !== plan.revision) {
					const { reason } = (await ctx.call("planning-plans.runnable", { id: plan.id })) as {
						reason: string;
					};
					throw conflict(`plan "${plan.title}" cannot run: ${reason ?? "it is not approved"}`, "planId");
				}
				if (!plan.steps.length) throw invalid("planId", `plan "${plan.title}" has no steps`);
				const job = await this.withEvents(async tx => {
					const row = await insertJob(tx, "execution_runs", {
						organizationId,
						kind: "execute",
						payload: { planId: plan.id },
						total: plan.steps.length,
						columns: {
							plan_id: plan.id,
							plan_revision: plan.revision,
							title: plan.title,
							created_by: authOf(ctx)?.userId ?? null
						}
					});
					// A plan is a chain: each step depends on the one before it.
					await tx.query(
						`INSERT INTO execution_steps (organization_id, run_id, position, depends_on, kind, title, config,
						idempotency_key)
						SELECT $1, $2::uuid, s.ord - 1, CASE WHEN s.ord = 1 THEN '{}'::int[] ELSE ARRAY[(s.ord - 2)::int] END,
						s.step->>'kind', s.step->>'title', coalesce(s.step->'config', '{}'), $2::text || ':' || (s.ord - 1)
						FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS s(step, ord)`,
						[organizationId, row.id, JSON.stringify(plan.steps)]
					);
					return row;
				});
				kickJobs(this.broker, "execution_runs", { job, live: EXECUTION_RUNS_LIVE });
				return runView(job);
			}
		},

		// Internal: the workflow module starts a run of a workflow version, whose steps it sends (copied, so the run
		// finishes on the version it started with). Only the workflow service, proved by its credential, may call it.
		// `id` makes a start asked twice (a schedule tick retried) one run. Over a limit, the run is held.
		startGraph: {
			visibility: "public",
			permission: "execution:run",
			params: {
				id: { type: "uuid", optional: true },
				// The run whose sub-workflow step starts this one (nesting is limited).
				parentRunId: { type: "uuid", optional: true },
				workflowId: "uuid",
				workflowVersion: { type: "number", integer: true, min: 1 },
				title: { type: "string", min: 1, max: 300 },
				trigger: { type: "enum", values: ["manual", "schedule", "workflow"] },
				createdBy: { type: "uuid", optional: true, nullable: true },
				inputs: { type: "object", optional: true },
				steps: { type: "array", min: 1, items: graphStep },
				limits: {
					type: "object",
					props: {
						workflow: { type: "number", integer: true, min: 1, nullable: true },
						organization: { type: "number", integer: true, min: 1 }
					}
				}
			},
			response: runRow,
			async handler(
				this: Self,
				ctx: Context<{
					id?: string;
					parentRunId?: string;
					workflowId: string;
					workflowVersion: number;
					title: string;
					trigger: string;
					createdBy?: string | null;
					inputs?: Record<string, unknown>;
					steps: {
						position: number;
						node_id: string;
						kind: string;
						title: string;
						config: object;
						depends_on: number[];
						depends_when: Record<string, boolean>;
					}[];
					limits: Limits;
				}>
			) {
				const auth = authOf(ctx);
				if (auth?.kind !== "service" || auth.service !== "workflow-definitions")
					throw forbidden("only the workflow service starts workflow runs");
				const organizationId = orgOf(ctx);
				const p = ctx.params;
				const { job, created } = await this.withEvents(async tx => {
					await lockWorkflowRuns(tx, organizationId);
					if (p.id) {
						const { rows } = await tx.query<JobRow>(
							"SELECT * FROM execution_runs WHERE id = $1 AND organization_id = $2",
							[p.id, organizationId]
						);
						if (rows[0]) return { job: rows[0], created: false };
					}
					let depth = 0;
					if (p.parentRunId) {
						const parent = await tx.query<{ payload: { depth?: number } }>(
							"SELECT payload FROM execution_runs WHERE id = $1 AND organization_id = $2",
							[p.parentRunId, organizationId]
						);
						if (!parent.rows[0]) throw notFound("parent run", "parentRunId");
						depth = (parent.rows[0].payload.depth ?? 0) + 1;
						if (depth > MAX_DEPTH)
							throw invalid(
								"workflow",
								`sub-workflows nest at most ${MAX_DEPTH} deep (does one start itself?)`
							);
					}
					// A sub-workflow's run is part of its parent's, which already holds a slot: held behind its own parent
					// (or behind parents that fill the limit, each waiting for its child) it would never start.
					const held = !p.parentRunId && !(await hasSlot(tx, organizationId, p.workflowId, p.limits));
					const row = await insertJob(tx, "execution_runs", {
						organizationId,
						kind: "execute",
						payload: { workflowId: p.workflowId, inputs: p.inputs ?? {}, limits: p.limits, depth },
						total: p.steps.length,
						columns: {
							...(p.id ? { id: p.id } : {}),
							workflow_id: p.workflowId,
							workflow_version: p.workflowVersion,
							trigger: p.trigger,
							title: p.title,
							created_by: p.createdBy ?? null,
							held,
							...(held ? { status: "waiting" } : {})
						}
					});
					await tx.query(
						`INSERT INTO execution_steps (organization_id, run_id, position, depends_on, depends_when, node_id, kind,
						title, config, idempotency_key)
						SELECT $1, $2::uuid, s.position, s.depends_on, s.depends_when, s.node_id, s.kind, s.title, s.config,
						$2::text || ':' || s.position
						FROM jsonb_to_recordset($3::jsonb) AS s(position int, depends_on int[], depends_when jsonb, node_id text,
						kind text, title text, config jsonb)`,
						[organizationId, row.id, JSON.stringify(p.steps)]
					);
					return { job: row, created: true };
				});
				if (created && !job.held) kickJobs(this.broker, "execution_runs", { job, live: EXECUTION_RUNS_LIVE });
				else if (created) this.announceJob(job);
				return runView(job);
			}
		},

		// A person approves the step the run waits on (an approval step, or one marked irreversible); the run goes on.
		approve: {
			rest: "POST /:id/approve",
			permission: "execution:approve",
			params: { id: idParam, position: { type: "number", integer: true, min: 0, convert: true, label: "Step" } },
			response: runDetail,
			async handler(this: Self, ctx: Context<{ id: string; position: number }>) {
				const organizationId = orgOf(ctx);
				const userId = authOf(ctx)?.userId ?? null;
				const run = await this.withEvents(async tx => {
					const run = await lockedRun(tx, organizationId, ctx.params.id);
					if (!["waiting", "running", "queued"].includes(run.status))
						throw conflict(`the run is ${run.status}: there is nothing to approve`, "id");
					const { rows } = await tx.query<{ id: string; status: string; config: any; title: string }>(
						"SELECT id, status, config, title FROM execution_steps WHERE run_id = $1 AND position = $2 FOR UPDATE",
						[run.id, ctx.params.position]
					);
					const step = rows[0];
					if (!step) throw notFound("step", "position");
					if (step.status !== "waiting_approval")
						throw conflict(
							`step "${step.title}" is not waiting for approval (it is ${step.status})`,
							"position"
						);
					const approvers: string[] = step.config.approvers ?? [];
					if (approvers.length && (!userId || !approvers.includes(userId)))
						throw forbidden(`step "${step.title}" is approved only by its approvers`);
					await tx.query(
						`UPDATE execution_steps SET status = 'pending', approved_by = $2, approved_at = now(),
						logs = logs || jsonb_build_array(jsonb_build_object('at', now(), 'level', 'info',
						'message', 'approved')) WHERE id = $1`,
						[step.id, userId]
					);
					await resumeJob(tx, "execution_runs", run.id);
					return run;
				});
				kickJobs(this.broker, "execution_runs");
				this.announceJob(run);
				return this.detail(organizationId, run.id);
			}
		},

		// Undoes the completed steps, last first. Asked again (or of a run already rolled back) it undoes nothing twice.
		rollback: {
			rest: "POST /:id/rollback",
			permission: "execution:run",
			params: { id: idParam },
			response: runRow,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const organizationId = orgOf(ctx);
				const { row, queued } = await this.withEvents(async tx => {
					const run = await lockedRun(tx, organizationId, ctx.params.id);
					if (run.kind === "rollback" && ["queued", "running", "completed"].includes(run.status))
						return { row: run, queued: false };
					if (["queued", "running", "waiting"].includes(run.status))
						throw conflict("the run is still going: cancel it before rolling it back", "id");
					const { rows } = await tx.query<JobRow>(
						`UPDATE execution_runs SET kind = 'rollback', status = 'queued', error = NULL, finished_at = NULL,
						lease_owner = NULL, done = 0 WHERE id = $1 RETURNING *`,
						[run.id]
					);
					return { row: rows[0], queued: true };
				});
				if (queued) kickJobs(this.broker, "execution_runs", { job: row, live: EXECUTION_RUNS_LIVE });
				return runView(row);
			}
		},

		cancel: {
			rest: "POST /:id/cancel",
			permission: "execution:run",
			params: { id: idParam },
			response: runRow,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const run = await this.cancelJob(orgOf(ctx), ctx.params.id);
				if (!run) throw notFound("plan run", "id");
				return runView(run);
			}
		}
	},

	methods: {
		// Queues again the parked runs whose time came: a wait step whose wake_at passed, a sub-workflow step whose
		// child run ended, a held workflow run a slot freed for (oldest first, under the organization's lock that starts take too).
		async resumeParked(this: Self) {
			const db = await getDb();
			const woken = await db.transaction(async tx => {
				const { rows } = await tx.query<{ id: string }>(
					// Driven by the sleeping steps (a partial index), not by every parked run.
					`UPDATE execution_runs r SET status = 'queued' WHERE r.id IN (SELECT s.run_id FROM execution_steps s
						WHERE s.status = 'sleeping' AND (s.wake_at <= now() OR (${childEnded("s")})))
					AND r.status = 'waiting' AND NOT r.held RETURNING r.id`
				);
				return rows.length;
			});
			let promoted = 0;
			const { rows: orgs } = await db.query<{ organization_id: string }>(
				"SELECT DISTINCT organization_id FROM execution_runs WHERE held AND status = 'waiting'"
			);
			for (const { organization_id: org } of orgs)
				promoted += await db.transaction(async tx => {
					await lockWorkflowRuns(tx, org);
					const { rows: held } = await tx.query<JobRow>(
						`SELECT * FROM execution_runs WHERE organization_id = $1 AND held AND status = 'waiting'
						ORDER BY created_at, id FOR UPDATE`,
						[org]
					);
					let n = 0;
					for (const run of held) {
						if (!(await hasSlot(tx, org, run.workflow_id as string, run.payload.limits as Limits)))
							continue;
						await tx.query("UPDATE execution_runs SET held = false WHERE id = $1", [run.id]);
						await resumeJob(tx, "execution_runs", run.id);
						n++;
					}
					return n;
				});
			if (woken || promoted) kickJobs(this.broker, "execution_runs");
		},

		async detail(this: Self, organizationId: string, id: string) {
			const db = await getDb();
			const { rows } = await db.query<JobRow>(
				"SELECT * FROM execution_runs WHERE id = $1::text::uuid AND organization_id = $2",
				[id, organizationId]
			);
			if (!rows[0]) throw notFound("plan run", "id");
			return { run: runView(rows[0]), steps: (await stepsOf(db, id, "*")).map(stepView) };
		}
	},

	created(this: Service) {
		const self = this as Self;
		const s = settings();
		const policy = new HostPolicy(s.allowedPrivateHosts as HostRule[], {
			variable: "EXECUTION_ALLOWED_PRIVATE_HOSTS"
		});
		self.engine = new Engine({
			env: { policy, call: (org, action, params, opts) => self.callForOrganization(org, action, params, opts) },
			settings: () => {
				const now = settings();
				return {
					stepTimeoutMs: now.stepTimeoutMs,
					retryBaseMs: now.retryBaseMs,
					heartbeatMs: Math.max(200, Math.floor(now.leaseMs / 3))
				};
			},
			node: self.broker.nodeID
		});
	}
};
export default ExecutionRunsService;
