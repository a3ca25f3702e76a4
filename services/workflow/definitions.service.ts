// workflow-definitions: the organization's reusable workflows. A definition keeps each graph it was saved with as an
// immutable version; a run copies the steps of one version into the execution engine (execution-runs.startGraph,
// which only this service may call), so it finishes on the version it started with. Schedules start runs by cron:
// each tick is one row, inserted by the one replica that starts its run.
import type { Context } from "moleculer";
import { Cron } from "croner";
import canonicalize from "canonicalize";
import type { ServiceSchema } from "../../lib/schema";
import { getDb, type Queryable } from "../../lib/db";
import { authOf } from "../../lib/authz";
import { moduleSettings } from "../../lib/config";
import { actionMissing, forbidden, fromDbError, invalid, notFound } from "../../lib/errors";
import { extend, named } from "../../lib/response";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import { HousekeepingMixin } from "../../mixins/housekeeping.mixin";
import { ServiceIdentityMixin, type ServiceIdentity } from "../../mixins/service-identity.mixin";
import { runRow } from "../execution/execution.responses";
import { uuidFrom } from "../execution/graph-steps";
import { checkInputs, stepsOf, validateGraph, type Graph } from "./graph";
import workflowModule from "./workflow.module";
import "./workflow.events";

type Schedule = { cron: string; timezone?: string; inputs?: Record<string, unknown> } | null;
type Concurrency = { limit: number } | null;
interface DefinitionRow {
	id: string;
	organization_id: string;
	name: string;
	description: string;
	version: number;
	schedule: Schedule;
	concurrency: Concurrency;
	enabled: boolean;
	last_tick_at: Date | null;
	created_by: string | null;
	created_at: Date;
	updated_at: Date;
}
type Trigger = "manual" | "schedule" | "workflow";
interface Self extends ServiceIdentity {
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
	startRun(
		def: DefinitionRow,
		o: {
			version?: number;
			inputs?: Record<string, unknown>;
			trigger: Trigger;
			userId?: string | null;
			id?: string;
			parentRunId?: string;
		}
	): Promise<Record<string, unknown>>;
	tickSchedules(): Promise<void>;
}

const settings = () => moduleSettings(workflowModule);

function orgOf(ctx: Context): string {
	const org = authOf(ctx)?.organizationId;
	if (!org) throw forbidden("no organization selected");
	return org;
}

const definitionView = (d: DefinitionRow) => ({
	id: d.id,
	name: d.name,
	description: d.description,
	version: d.version,
	schedule: d.schedule,
	concurrency: d.concurrency,
	enabled: d.enabled,
	created_at: d.created_at,
	updated_at: d.updated_at
});

const definition = named("WorkflowDefinition", {
	id: "uuid",
	name: "string",
	description: "string",
	version: "number|integer",
	schedule: { type: "object", nullable: true, props: { cron: "string", timezone: "string|optional" } },
	concurrency: { type: "object", nullable: true, props: { limit: "number|integer" } },
	enabled: "boolean",
	created_at: "date",
	updated_at: "date"
});
// A row of the list: the definition and its newest run.
const listed = {
	...extend(definition, { lastRun: { ...extend(runRow, {}), nullable: true } }),
	$$name: "WorkflowListItem"
};
const versionRow = {
	type: "object",
	props: { version: "number|integer", created_at: "date", created_by: "uuid|nullable" }
};

const scheduleRule = {
	type: "object",
	nullable: true,
	optional: true,
	strict: true,
	props: {
		cron: { type: "string", min: 1, max: 200 },
		timezone: { type: "string", max: 100, optional: true },
		inputs: { type: "object", optional: true }
	},
	label: "Schedule"
};
const concurrencyRule = {
	type: "object",
	nullable: true,
	optional: true,
	strict: true,
	props: { limit: { type: "number", integer: true, min: 1, max: 10_000 } },
	label: "Concurrency"
};
const writable = {
	name: { type: "string", min: 1, max: 200, trim: true, label: "Name" },
	description: { type: "string", max: 2000, optional: true, label: "Description" },
	graph: { type: "object", label: "Graph" },
	schedule: scheduleRule,
	concurrency: concurrencyRule,
	enabled: { type: "boolean", optional: true, label: "Enabled" }
};
const optional = (rules: Record<string, Record<string, unknown>>) =>
	Object.fromEntries(Object.entries(rules).map(([k, r]) => [k, { ...r, optional: true }]));

// The schedule's cron and timezone, checked with the library that runs it.
function cronOf(schedule: NonNullable<Schedule>): Cron {
	if (schedule.timezone)
		try {
			new Intl.DateTimeFormat("en", { timeZone: schedule.timezone });
		} catch {
			throw invalid("schedule.timezone", `"${schedule.timezone}" is not a time zone (e.g. Europe/Berlin)`);
		}
	try {
		return new Cron(schedule.cron, { timezone: schedule.timezone ?? "UTC", paused: true });
	} catch (err) {
		throw invalid("schedule.cron", `not a cron expression: ${(err as Error).message}`);
	}
}

// A run's id for a schedule tick: the same for every replica and every retry of that tick.
const tickRunId = (definitionId: string, tick: Date) => uuidFrom(`schedule\0${definitionId}\0${tick.toISOString()}`);

async function definitionOf(db: Queryable, organizationId: string, id: string, lock = false): Promise<DefinitionRow> {
	const { rows } = await db.query<DefinitionRow>(
		`SELECT * FROM workflow_definitions WHERE id = $1::text::uuid AND organization_id = $2${lock ? " FOR UPDATE" : ""}`,
		[id, organizationId]
	);
	if (!rows[0]) throw notFound("workflow", "id");
	return rows[0];
}

async function graphOf(db: Queryable, def: DefinitionRow, version = def.version): Promise<Graph> {
	const { rows } = await db.query<{ graph: Graph }>(
		"SELECT graph FROM workflow_versions WHERE definition_id = $1 AND version = $2",
		[def.id, version]
	);
	if (!rows[0]) throw notFound(`version ${version} of workflow "${def.name}"`, "version");
	return rows[0].graph;
}

const idParam = { type: "uuid", label: "Workflow" };

const WorkflowDefinitionsService: ServiceSchema = {
	name: "workflow-definitions",
	mixins: [
		EventsMixin,
		ServiceIdentityMixin,
		HousekeepingMixin("tickSchedules", () => settings().schedulePollMs, "start scheduled workflow runs")
	],
	settings: { rest: "/workflow/definitions" },

	actions: {
		// Each workflow with its newest run (null: never run, or the execution module is not running).
		list: {
			rest: "GET /",
			permission: "workflow:read",
			response: { type: "array", items: listed },
			async handler(ctx: Context) {
				const { rows } = await (
					await getDb()
				).query<DefinitionRow>(
					"SELECT * FROM workflow_definitions WHERE organization_id = $1 ORDER BY name, id",
					[orgOf(ctx)]
				);
				const latest = (await ctx
					.call("execution-runs.latestOfWorkflows", { workflowIds: rows.map(r => r.id) })
					.catch(err => {
						if (actionMissing(err, "execution-runs.latestOfWorkflows")) return [];
						throw err;
					})) as { workflowId: string }[];
				const byWorkflow = new Map(latest.map(r => [r.workflowId, r]));
				return rows.map(r => ({ ...definitionView(r), lastRun: byWorkflow.get(r.id) ?? null }));
			}
		},

		get: {
			rest: "GET /:id",
			permission: "workflow:read",
			params: { id: idParam },
			response: extend(definition, { graph: "object", versions: { type: "array", items: versionRow } }),
			async handler(ctx: Context<{ id: string }>) {
				const db = await getDb();
				const def = await definitionOf(db, orgOf(ctx), ctx.params.id);
				const { rows } = await db.query(
					`SELECT version, created_at, created_by FROM workflow_versions WHERE definition_id = $1
					ORDER BY version DESC`,
					[def.id]
				);
				return { ...definitionView(def), graph: await graphOf(db, def), versions: rows };
			}
		},

		version: {
			rest: "GET /:id/versions/:version",
			permission: "workflow:read",
			params: {
				id: idParam,
				version: { type: "number", integer: true, min: 1, convert: true, label: "Version" }
			},
			response: { type: "object", props: { version: "number|integer", graph: "object", created_at: "date" } },
			async handler(ctx: Context<{ id: string; version: number }>) {
				const db = await getDb();
				const def = await definitionOf(db, orgOf(ctx), ctx.params.id);
				const { rows } = await db.query(
					"SELECT version, graph, created_at, created_by FROM workflow_versions WHERE definition_id = $1 AND version = $2",
					[def.id, ctx.params.version]
				);
				if (!rows[0]) throw notFound(`version ${ctx.params.version}`, "version");
				return rows[0];
			}
		},

		create: {
			rest: "POST /",
			permission: "workflow:write",
			params: { $$strict: true, ...writable },
			response: definition,
			async handler(
				this: Self,
				ctx: Context<{
					name: string;
					description?: string;
					graph: unknown;
					schedule?: Schedule;
					concurrency?: Concurrency;
					enabled?: boolean;
				}>
			) {
				const organizationId = orgOf(ctx);
				const p = ctx.params;
				const { graph } = validateGraph(p.graph);
				if (p.schedule) {
					cronOf(p.schedule);
					checkInputs(graph, p.schedule.inputs, "schedule.inputs");
				}
				const userId = authOf(ctx)?.userId ?? null;
				const row = await this.withEvents(async (tx, publish) => {
					const { rows } = await tx.query<DefinitionRow>(
						`INSERT INTO workflow_definitions (organization_id, name, description, schedule, concurrency, enabled,
						created_by, last_tick_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now()) RETURNING *`,
						[
							organizationId,
							p.name,
							p.description ?? "",
							p.schedule ? JSON.stringify(p.schedule) : null,
							p.concurrency ? JSON.stringify(p.concurrency) : null,
							p.enabled ?? true,
							userId
						]
					);
					await tx.query(
						`INSERT INTO workflow_versions (definition_id, organization_id, version, graph, created_by)
						VALUES ($1, $2, 1, $3, $4)`,
						[rows[0].id, organizationId, JSON.stringify(graph), userId]
					);
					publish("workflow.definition.created", {
						organizationId,
						definitionId: rows[0].id,
						name: rows[0].name,
						version: 1
					});
					return rows[0];
				}).catch((err: unknown) => {
					throw fromDbError(err, "a workflow with this name", "name");
				});
				return definitionView(row);
			}
		},

		// A changed graph is saved as a new version; runs under way keep the steps they started with.
		update: {
			rest: "PUT /:id",
			permission: "workflow:write",
			params: { $$strict: true, id: idParam, ...optional(writable) },
			response: definition,
			async handler(
				this: Self,
				ctx: Context<{
					id: string;
					name?: string;
					description?: string;
					graph?: unknown;
					schedule?: Schedule;
					concurrency?: Concurrency;
					enabled?: boolean;
				}>
			) {
				const organizationId = orgOf(ctx);
				const p = ctx.params;
				const graph = p.graph === undefined ? undefined : validateGraph(p.graph).graph;
				const userId = authOf(ctx)?.userId ?? null;
				const row = await this.withEvents(async (tx, publish) => {
					const def = await definitionOf(tx, organizationId, p.id, true);
					const current = graph ?? (await graphOf(tx, def));
					const schedule = p.schedule === undefined ? def.schedule : p.schedule;
					if (schedule) {
						cronOf(schedule);
						checkInputs(current, schedule.inputs, "schedule.inputs");
					}
					const changed = graph !== undefined && canonicalize(graph) !== canonicalize(await graphOf(tx, def));
					const version = changed ? def.version + 1 : def.version;
					if (changed)
						await tx.query(
							`INSERT INTO workflow_versions (definition_id, organization_id, version, graph, created_by)
							VALUES ($1, $2, $3, $4, $5)`,
							[def.id, organizationId, version, JSON.stringify(graph), userId]
						);
					// A new or changed schedule counts from now: ticks before it are not caught up.
					const rescheduled = canonicalize(schedule) !== canonicalize(def.schedule);
					const { rows } = await tx.query<DefinitionRow>(
						`UPDATE workflow_definitions SET name = $2, description = $3, schedule = $4, concurrency = $5,
						enabled = $6, version = $7, updated_at = now(),
						last_tick_at = CASE WHEN $8 THEN now() ELSE last_tick_at END WHERE id = $1 RETURNING *`,
						[
							def.id,
							p.name ?? def.name,
							p.description ?? def.description,
							schedule ? JSON.stringify(schedule) : null,
							p.concurrency === undefined
								? JSON.stringify(def.concurrency)
								: p.concurrency && JSON.stringify(p.concurrency),
							p.enabled ?? def.enabled,
							version,
							rescheduled
						]
					);
					publish("workflow.definition.updated", {
						organizationId,
						definitionId: def.id,
						name: rows[0].name,
						version
					});
					return rows[0];
				}).catch((err: unknown) => {
					throw fromDbError(err, "a workflow with this name", "name");
				});
				return definitionView(row);
			}
		},

		// Runs already started keep going (their steps are their own); their history stays in execution.
		remove: {
			rest: "DELETE /:id",
			permission: "workflow:write",
			params: { id: idParam },
			response: { type: "object", props: { id: "uuid", deleted: "boolean" } },
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const organizationId = orgOf(ctx);
				await this.withEvents(async (tx, publish) => {
					const def = await definitionOf(tx, organizationId, ctx.params.id, true);
					await tx.query("DELETE FROM workflow_definitions WHERE id = $1", [def.id]);
					publish("workflow.definition.deleted", { organizationId, definitionId: def.id, name: def.name });
				});
				return { id: ctx.params.id, deleted: true };
			}
		},

		startRun: {
			rest: "POST /:id/runs",
			permission: "workflow:run",
			params: {
				id: idParam,
				inputs: { type: "object", optional: true, label: "Inputs" },
				version: { type: "number", integer: true, min: 1, optional: true, convert: true, label: "Version" }
			},
			response: runRow,
			async handler(
				this: Self,
				ctx: Context<{ id: string; inputs?: Record<string, unknown>; version?: number }>
			) {
				const def = await definitionOf(await getDb(), orgOf(ctx), ctx.params.id);
				return this.startRun(def, {
					version: ctx.params.version,
					inputs: ctx.params.inputs,
					trigger: "manual",
					userId: authOf(ctx)?.userId ?? null
				});
			}
		},

		// Internal: a sub-workflow step of a run starts a workflow (by id or name) with its inputs. Only the execution
		// service, proved by its credential, calls it; `id` (the step's) makes a start asked again the same run.
		startChild: {
			visibility: "public",
			permission: "workflow:run",
			params: {
				id: "uuid",
				workflow: { type: "string", min: 1, max: 200 },
				inputs: { type: "object", optional: true },
				parentRunId: "uuid"
			},
			response: runRow,
			async handler(
				this: Self,
				ctx: Context<{ id: string; workflow: string; inputs?: Record<string, unknown>; parentRunId: string }>
			) {
				const auth = authOf(ctx);
				if (auth?.kind !== "service" || auth.service !== "execution-runs")
					throw forbidden("only the execution service starts sub-workflows");
				const organizationId = orgOf(ctx);
				const { rows } = await (
					await getDb()
				).query<DefinitionRow>(
					`SELECT * FROM workflow_definitions WHERE organization_id = $1
					AND (name = $2 OR id::text = $2) ORDER BY (id::text = $2) DESC LIMIT 1`,
					[organizationId, ctx.params.workflow]
				);
				if (!rows[0]) throw notFound(`workflow "${ctx.params.workflow}"`, "workflow");
				return this.startRun(rows[0], {
					trigger: "workflow",
					inputs: ctx.params.inputs,
					id: ctx.params.id,
					parentRunId: ctx.params.parentRunId
				});
			}
		},

		// The workflow's runs, newest first (execution's rows of this workflow, in the caller's organization).
		runs: {
			rest: "GET /:id/runs",
			permission: "workflow:read",
			params: {
				id: idParam,
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
			async handler(ctx: Context<{ id: string; limit?: number }>) {
				const def = await definitionOf(await getDb(), orgOf(ctx), ctx.params.id);
				return ctx.call("execution-runs.list", { workflowId: def.id, limit: ctx.params.limit ?? 50 });
			}
		}
	},

	methods: {
		// Starts a run of a version (the latest by default) with checked inputs, as this service for the organization.
		async startRun(this: Self, def, o) {
			const db = await getDb();
			const version = o.version ?? def.version;
			const graph = await graphOf(db, def, version);
			const inputs = checkInputs(graph, o.inputs);
			const limits = {
				workflow: def.concurrency?.limit ?? null,
				organization: settings().runsPerOrganization
			};
			const run = (await this.callForOrganization(def.organization_id, "execution-runs.startGraph", {
				...(o.id ? { id: o.id } : {}),
				...(o.parentRunId ? { parentRunId: o.parentRunId } : {}),
				workflowId: def.id,
				workflowVersion: version,
				title: def.name,
				trigger: o.trigger,
				createdBy: o.userId ?? null,
				inputs,
				steps: stepsOf(graph),
				limits
			})) as Record<string, unknown>;
			await this.withEvents(async (_tx, publish) => {
				publish("workflow.run.started", {
					organizationId: def.organization_id,
					definitionId: def.id,
					runId: run.id as string,
					version,
					trigger: o.trigger
				});
			});
			return run;
		},

		// For each enabled schedule, the latest tick that came since the last one started a run: at most one run
		// however many ticks were missed while nothing ran. The tick's row decides which replica starts it; the run's
		// id is the tick's, so a start retried after a failure is the same run.
		async tickSchedules(this: Self) {
			const db = await getDb();
			const { rows } = await db.query<DefinitionRow>(
				"SELECT * FROM workflow_definitions WHERE schedule IS NOT NULL AND enabled"
			);
			const now = new Date();
			for (const def of rows) {
				let tick: Date | undefined;
				try {
					tick = cronOf(def.schedule!).previousRuns(1, now)[0];
				} catch {
					continue;
				}
				if (!tick || (def.last_tick_at && tick.getTime() <= def.last_tick_at.getTime())) continue;
				const runId = tickRunId(def.id, tick);
				await db
					.transaction(async tx => {
						const claimed = await tx.query(
							`INSERT INTO workflow_schedule_ticks (definition_id, organization_id, tick_at, run_id)
							VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING tick_at`,
							[def.id, def.organization_id, tick, runId]
						);
						await tx.query(
							"UPDATE workflow_definitions SET last_tick_at = greatest(last_tick_at, $2) WHERE id = $1",
							[def.id, tick]
						);
						if (!claimed.rows.length) return;
						try {
							await this.startRun(def, { trigger: "schedule", inputs: def.schedule?.inputs, id: runId });
						} catch (err) {
							// A refusal (inputs the version no longer takes) would be the same on every retry: the tick
							// is kept, with no run, and said once. Anything else leaves the tick to the next round.
							const code = Number((err as { code?: unknown }).code);
							if (!(code >= 400 && code < 500)) throw err;
							await tx.query(
								"UPDATE workflow_schedule_ticks SET run_id = NULL WHERE definition_id = $1 AND tick_at = $2",
								[def.id, tick]
							);
							this.logger.warn(
								`workflow ${def.id}: the tick of ${tick!.toISOString()} started no run: ${(err as Error).message}`
							);
						}
					})
					.catch((err: Error) =>
						this.logger.warn(
							`workflow ${def.id}: the tick of ${tick!.toISOString()} did not start: ${err.message}`
						)
					);
			}
		}
	}
};
export default WorkflowDefinitionsService;
