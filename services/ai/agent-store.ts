// Agent runs and their steps in PostgreSQL (migrations/ai/0011_agent_runs.sql, 0012_agent_run_durability.sql), and
// the jobs that drive them (ai_agent_jobs: mixins/jobs.mixin.ts). Every change of a run's status is a
// conditional update from the status it is expected to have, so two replicas never both drive one run and a run
// cancelled meanwhile is never written back to running or completed.
import type { TenantSql } from "../../lib/db/tenant";
import { IDEMPOTENCY_RETENTION_HOURS } from "../../lib/idempotency";
import type { Catalogue } from "./agent-tools";

export type RunStatus =
	"running" | "awaiting_approval" | "completed" | "failed" | "cancelled" | "step_limit" | "budget_exceeded";
export const FINISHED: RunStatus[] = ["completed", "failed", "cancelled", "step_limit", "budget_exceeded"];

export interface RunRow {
	id: string;
	organization_id: string;
	user_id: string | null;
	api_key_id: string | null;
	model: string;
	tool_sets: string[];
	status: RunStatus;
	messages: any[];
	tools: Catalogue;
	max_steps: number;
	max_tokens: number | null;
	max_cost: number | null;
	turns: number;
	tokens: number;
	prompt_tokens: number;
	completion_tokens: number;
	cached_tokens: number;
	cost: number;
	output: string | null;
	error: string | null;
	created_at: string;
	updated_at: string;
	finished_at: string | null;
}

export interface StepRow {
	id: string;
	run_id: string;
	seq: number;
	kind: "model" | "tool";
	status: string;
	content: string | null;
	tool_calls: any[] | null;
	call_id: string | null;
	tool: string | null;
	server: string | null;
	arguments: unknown;
	result: unknown;
	is_error: boolean;
	decided_by: string | null;
	tokens: number;
	cost: number;
	duration_ms: number | null;
	// A tool call's record before it is made: its key (the request id it is made with) and when it was started.
	idempotency_key: string | null;
	call_started_at: string | null;
	attempts: number;
	created_at: string;
	updated_at: string;
}

const RUN_COLUMNS = `id, organization_id, user_id, api_key_id, model, tool_sets, status, messages, tools, max_steps,
	max_tokens, max_cost::float8 AS max_cost, turns, tokens, prompt_tokens, completion_tokens, cached_tokens,
	cost::float8 AS cost, output, error, created_at, updated_at, finished_at`;
const STEP_COLUMNS = `id, run_id, seq, kind, status, content, tool_calls, call_id, tool, server, arguments, result,
	is_error, decided_by, tokens, cost::float8 AS cost, duration_ms, idempotency_key, call_started_at, attempts,
	created_at, updated_at`;

export async function insertRun(t: TenantSql, r: Partial<RunRow> & { idempotency_key?: string }): Promise<RunRow> {
	if (r.idempotency_key)
		// A key past its window is the new run's.
		await t.query(
			`UPDATE ai_agent_runs SET idempotency_key = NULL WHERE organization_id = $org AND idempotency_key = $1
			AND created_at <= now() - interval '${IDEMPOTENCY_RETENTION_HOURS} hours'`,
			[r.idempotency_key]
		);
	return (await t.one<RunRow>(
		`INSERT INTO ai_agent_runs (organization_id, user_id, api_key_id, model, tool_sets, status, messages, tools,
			max_steps, max_tokens, max_cost, idempotency_key)
		 VALUES ($org, $1, $2, $3, $4, 'running', $5, $6, $7, $8, $9, $10) RETURNING ${RUN_COLUMNS}`,
		[
			r.user_id ?? null,
			r.api_key_id ?? null,
			r.model,
			r.tool_sets,
			JSON.stringify(r.messages),
			JSON.stringify(r.tools),
			r.max_steps,
			r.max_tokens ?? null,
			r.max_cost ?? null,
			r.idempotency_key ?? null
		]
	))!;
}

// The run started with this idempotency key within the retention window (lib/idempotency.ts), if any.
export const runByKey = (t: TenantSql, key: string) =>
	t.one<RunRow>(
		`SELECT ${RUN_COLUMNS} FROM ai_agent_runs WHERE organization_id = $org AND idempotency_key = $1
		AND created_at > now() - interval '${IDEMPOTENCY_RETENTION_HOURS} hours'`,
		[key]
	);

export const getRun = (t: TenantSql, id: string) =>
	t.byId<RunRow>(
		"agent run",
		`SELECT ${RUN_COLUMNS} FROM ai_agent_runs WHERE id = $1 AND organization_id = $org`,
		id
	);

export const stepsOf = (t: TenantSql, runId: string) =>
	t.rows<StepRow>(
		`SELECT ${STEP_COLUMNS} FROM ai_agent_steps WHERE run_id = $1 AND organization_id = $org ORDER BY seq`,
		[runId]
	);

export async function listRuns(t: TenantSql, limit: number, status?: string): Promise<Omit<RunRow, "messages">[]> {
	const cols = RUN_COLUMNS.replace("messages, tools, ", "");
	return t.rows(
		`SELECT ${cols} FROM ai_agent_runs WHERE organization_id = $org ${status ? "AND status = $2" : ""}
		 ORDER BY created_at DESC LIMIT $1`,
		status ? [limit, status] : [limit]
	);
}

// The run's new state, only while it still has status `from`; undefined when it no longer does.
export async function updateRun(
	t: TenantSql,
	id: string,
	from: RunStatus | RunStatus[],
	set: Partial<
		Pick<
			RunRow,
			| "status"
			| "messages"
			| "turns"
			| "tokens"
			| "prompt_tokens"
			| "completion_tokens"
			| "cached_tokens"
			| "cost"
			| "output"
			| "error"
		>
	>
): Promise<RunRow | undefined> {
	const cols: string[] = [];
	const params: unknown[] = [id, Array.isArray(from) ? from : [from]];
	for (const [k, v] of Object.entries(set)) {
		params.push(k === "messages" ? JSON.stringify(v) : v);
		cols.push(`${k} = $${params.length}`);
	}
	const finished = set.status && FINISHED.includes(set.status) ? ", finished_at = now()" : "";
	return t.one<RunRow>(
		`UPDATE ai_agent_runs SET ${cols.join(", ")}, updated_at = now()${finished}
		 WHERE id = $1 AND organization_id = $org AND status = ANY($2) RETURNING ${RUN_COLUMNS}`,
		params
	);
}

export async function insertStep(t: TenantSql, runId: string, s: Partial<StepRow>): Promise<StepRow> {
	const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));
	return (await t.one<StepRow>(
		`INSERT INTO ai_agent_steps (organization_id, run_id, seq, kind, status, content, tool_calls, call_id, tool,
			server, arguments, tokens, cost, duration_ms)
		 VALUES ($org, $1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM ai_agent_steps WHERE run_id = $1), $2, $3, $4, $5,
			$6, $7, $8, $9, $10, $11, $12)
		 RETURNING ${STEP_COLUMNS}`,
		[
			runId,
			s.kind,
			s.status,
			s.content ?? null,
			json(s.tool_calls),
			s.call_id ?? null,
			s.tool ?? null,
			s.server ?? null,
			json(s.arguments),
			s.tokens ?? 0,
			s.cost ?? 0,
			s.duration_ms ?? null
		]
	))!;
}

// A step's new state, only while it still has status `from` (an approval decided twice counts once).
export async function updateStep(
	t: TenantSql,
	id: string,
	from: string[],
	set: Partial<
		Pick<
			StepRow,
			| "status"
			| "result"
			| "is_error"
			| "decided_by"
			| "duration_ms"
			| "idempotency_key"
			| "call_started_at"
			| "attempts"
		>
	>
): Promise<StepRow | undefined> {
	const cols: string[] = [];
	const params: unknown[] = [id, from];
	for (const [k, v] of Object.entries(set)) {
		params.push(k === "result" ? JSON.stringify(v) : v);
		cols.push(`${k} = $${params.length}`);
	}
	return t.one<StepRow>(
		`UPDATE ai_agent_steps SET ${cols.join(", ")}, updated_at = now()
		 WHERE id = $1 AND organization_id = $org AND status = ANY($2) RETURNING ${STEP_COLUMNS}`,
		params
	);
}

// Asks for the run to be driven (from its start, or on from an approval) by whichever replica claims the job, in the
// transaction that makes it `running`. `auth` is who drives it (their permissions and quotas apply to its calls): what
// the caller's context said, never a credential.
export async function enqueueDrive(t: TenantSql, run: Pick<RunRow, "id" | "max_steps">): Promise<void> {
	const { sessionId: _s, expiresAt: _e, ...auth } = t.auth ?? ({} as NonNullable<TenantSql["auth"]>);
	await t.query(
		`INSERT INTO ai_agent_jobs (organization_id, run_id, kind, payload, total) VALUES ($org, $1, 'drive', $2, $3)`,
		[run.id, JSON.stringify({ runId: run.id, auth }), run.max_steps]
	);
}

// The job stops counting as the run's driver (the run paused), in the transaction that pauses it, so a decision that
// comes at once can ask for the next job.
export async function releaseJob(t: TenantSql, jobId: string): Promise<void> {
	await t.query(
		`UPDATE ai_agent_jobs SET status = 'completed', finished_at = now(), lease_owner = NULL
		 WHERE id = $1 AND organization_id = $org AND status = 'running'`,
		[jobId]
	);
}
