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
import { Engine, stepsOf } from "./engine";
import { EXECUTION_RUNS_LIVE, runDetail, runRow, RUN_STATUSES, runView, stepView } from "./execution.responses";
import "./execution.events";
import "../planning/planning.events";

interface Self extends JobsService, ServiceIdentity {
	engine: Engine;
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

const ExecutionRunsService: ServiceSchema = {
	name: "execution-runs",
	mixins: [
		EventsMixin,
		ServiceIdentityMixin,
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
			eventData: job => ({ planId: job.plan_id }),
			// A run cancelled, or ended by an error outside its steps, has an outcome too: published once, as the end
			// of its steps publishes it (engine.ts finish), never after that.
			ended: async (tx, job, publish, why) => {
				const { rows } = await tx.query<{ plan_id: string }>(
					"UPDATE execution_runs SET outcome = $2 WHERE id = $1 AND outcome IS NULL RETURNING plan_id",
					[job.id, why]
				);
				if (rows[0])
					publish("execution.plan.executed", {
						organizationId: job.organization_id,
						planId: rows[0].plan_id,
						runId: job.id,
						status: why
					});
			},
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
			async handler(ctx: Context<{ planId?: string; status?: string; limit?: number }>) {
				const { rows } = await (
					await getDb()
				).query<JobRow>(
					`SELECT * FROM execution_runs WHERE organization_id = $1 AND ($2::uuid IS NULL OR plan_id = $2)
					AND ($3::text IS NULL OR status = $3) ORDER BY created_at DESC, id LIMIT $4`,
					[orgOf(ctx), ctx.params.planId ?? null, ctx.params.status ?? null, ctx.params.limit ?? 50]
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
