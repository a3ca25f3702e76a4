// What execution's actions answer (OpenAPI and the UI's types come from these).
import { named } from "../../lib/response";
import type { JobRow, JobsLive } from "../../mixins/jobs.mixin";
import type { StepRow } from "./engine";

export const RUN_STATUSES = ["queued", "running", "waiting", "completed", "failed", "cancelled"];

export const runRow = named("ExecutionRun", {
	id: "uuid",
	// A run is of a plan's approved revision or of a workflow's version.
	planId: "uuid|nullable",
	planRevision: "number|integer|nullable",
	workflowId: "uuid|nullable",
	workflowVersion: "number|integer|nullable",
	trigger: { type: "enum", values: ["manual", "schedule", "workflow"], nullable: true },
	title: "string",
	kind: { type: "enum", values: ["execute", "rollback"] },
	status: { type: "enum", values: RUN_STATUSES },
	outcome: { type: "enum", values: ["succeeded", "failed"], nullable: true },
	done: "number|integer",
	total: "number|integer",
	error: { type: "string", nullable: true },
	attempts: "number|integer",
	createdAt: "date",
	startedAt: { type: "date", nullable: true },
	finishedAt: { type: "date", nullable: true },
	rolledBackAt: { type: "date", nullable: true }
});

const logLine = { type: "object", props: { at: "string", level: "string", message: "string" } };
export const stepRow = named("ExecutionStep", {
	position: "number|integer",
	dependsOn: { type: "array", items: "number" },
	// The workflow graph's node the step was copied from (null in a plan's run).
	nodeId: "string|nullable",
	wakeAt: { type: "date", nullable: true },
	kind: "string",
	title: "string",
	status: {
		type: "enum",
		values: ["pending", "running", "waiting_approval", "sleeping", "succeeded", "skipped", "failed"]
	},
	idempotencyKey: "string",
	attempts: "number|integer",
	failures: "number|integer",
	needsApproval: "boolean",
	undoable: "boolean",
	undoStatus: { type: "enum", values: ["none", "pending", "running", "done", "failed"] },
	output: { type: "any", optional: true },
	error: { type: "string", nullable: true },
	logs: { type: "array", items: logLine },
	approvedBy: { type: "uuid", nullable: true },
	approvedAt: { type: "date", nullable: true },
	startedAt: { type: "date", nullable: true },
	heartbeatAt: { type: "date", nullable: true },
	finishedAt: { type: "date", nullable: true },
	undoneAt: { type: "date", nullable: true }
});

export const runDetail = named("ExecutionRunDetail", {
	run: runRow,
	steps: { type: "array", items: stepRow }
});

// Live notices of runs to open pages (queued, each step, parked, ended).
export const EXECUTION_RUNS_LIVE: JobsLive = {
	entity: "execution-runs",
	noun: "plan run",
	permission: "execution:read"
};

export function runView(r: JobRow) {
	return {
		id: r.id,
		planId: (r.plan_id as string | null) ?? null,
		planRevision: (r.plan_revision as number | null) ?? null,
		workflowId: (r.workflow_id as string | null) ?? null,
		workflowVersion: (r.workflow_version as number | null) ?? null,
		trigger: (r.trigger as "manual" | "schedule" | "workflow" | null) ?? null,
		title: r.title as string,
		kind: r.kind as "execute" | "rollback",
		// A workflow run held over a concurrency limit is parked in the table, but to its reader it is in line.
		status: r.held ? "queued" : r.status,
		outcome: (r.outcome as "succeeded" | "failed" | null) ?? null,
		done: r.done,
		total: r.total,
		error: r.error,
		attempts: r.attempts,
		createdAt: r.created_at,
		startedAt: r.started_at ?? null,
		finishedAt: r.finished_at ?? null,
		rolledBackAt: r.rolled_back_at ?? null
	};
}

export function stepView(s: StepRow & Record<string, any>) {
	return {
		position: s.position,
		dependsOn: s.depends_on,
		nodeId: s.node_id ?? null,
		wakeAt: s.wake_at ?? null,
		kind: s.kind,
		title: s.title,
		status: s.status,
		idempotencyKey: s.idempotency_key,
		attempts: s.attempts,
		failures: s.failures,
		needsApproval: s.kind === "manual_approval" || s.config.irreversible === true,
		undoable: !!s.config.undo,
		undoStatus: s.undo_status,
		output: s.output ?? null,
		error: s.error,
		logs: s.logs,
		approvedBy: s.approved_by,
		approvedAt: s.approved_at,
		startedAt: s.started_at,
		heartbeatAt: s.heartbeat_at,
		finishedAt: s.finished_at,
		undoneAt: s.undone_at
	};
}
