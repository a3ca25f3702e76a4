// The engine over a run's steps. A run is a set of steps with dependencies (`depends_on`, positions); every step
// whose dependencies have succeeded is ready, and ready steps run side by side (a plan is a chain, so one at a
// time). Each step's state is committed before its effect starts (running, attempt n) and after it ends (succeeded
// with its output, or failed), in transactions that hold only while this replica holds the run's lease
// (mixins/jobs.mixin.ts `run.step`). A replica killed anywhere leaves the run to another after the lease runs out:
// succeeded steps are never run again, and the step it was in is run again with the same idempotency key.
import { setTimeout as delay } from "node:timers/promises";
import type { Queryable } from "../../lib/db";
import { getDb } from "../../lib/db";
import { exponentialDelay, jittered, withTimeLimit } from "../../lib/resilience";
import { JobStopped, JobWaiting, type JobRow, type JobRun } from "../../mixins/jobs.mixin";
import type { Publish } from "../../mixins/events.mixin";
import type { StepKind, StepRequest } from "../planning/planning.kinds";
import { PermanentStepError, sendRequest, STEP_RUNNERS, type StepEnv } from "./step-kinds";
import {
	evaluateCondition,
	hasTemplates,
	resolveTemplates,
	wakeAtOf,
	type ConditionOp,
	type GraphStepKind
} from "./graph-steps";

// sleeping: a wait step until its wake_at; skipped: on a branch a condition did not take (workflow runs).
export type StepStatus = "pending" | "running" | "waiting_approval" | "sleeping" | "succeeded" | "skipped" | "failed";
export type UndoStatus = "none" | "pending" | "running" | "done" | "failed";

export interface StepRow {
	id: string;
	run_id: string;
	organization_id: string;
	position: number;
	depends_on: number[];
	// Workflow runs: the branch each dependency out of a condition must have taken ({ "<position>": true|false }).
	depends_when: Record<string, boolean>;
	node_id: string | null;
	wake_at: Date | null;
	kind: StepKind | GraphStepKind;
	title: string;
	config: Record<string, any>;
	status: StepStatus;
	idempotency_key: string;
	attempts: number;
	failures: number;
	output: unknown;
	error: string | null;
	approved_by: string | null;
	approved_at: Date | null;
	undo_status: UndoStatus;
}

// A step as the replica driving the run holds it; `prestarted`: its start was committed with the step before it.
// `parked`: a sub-workflow step whose child run was seen still going in this turn.
type Run = StepRow & { prestarted?: boolean; parked?: boolean };

// Starts attempts of steps (their state committed before their effect begins).
const START_SQL = `UPDATE execution_steps SET status = 'running', attempts = attempts + 1,
	started_at = coalesce(started_at, now()), heartbeat_at = now(), logs = logs || $2::jsonb
	WHERE id = ANY($1::uuid[]) RETURNING id, attempts`;

// A step's success and, in one statement, the start of the steps it alone held back ($5: none in a run's last step).
const SUCCEED_SQL = `WITH succeeded AS (UPDATE execution_steps SET status = 'succeeded', output = $2::jsonb,
	error = NULL, finished_at = now(), undo_status = $3, logs = logs || $4::jsonb WHERE id = $1)
	UPDATE execution_steps SET status = 'running', attempts = attempts + 1, started_at = coalesce(started_at, now()),
	heartbeat_at = now(), logs = logs || $6::jsonb WHERE id = ANY($5::uuid[]) RETURNING id, attempts`;

// The statements of every step, parsed and planned once per connection (lib/db/driver.ts).
const PREPARED = { prepare: true };

const attemptLog = (s: StepRow, node: string) =>
	s.status === "running"
		? `attempt ${s.attempts + 1} on ${node}: resumed after the replica running it stopped`
		: `attempt ${s.attempts + 1} on ${node}`;

export interface EngineOptions {
	env: StepEnv;
	settings: () => { stepTimeoutMs: number; retryBaseMs: number; heartbeatMs: number };
	node: string;
}

const MAX_OUTPUT = 16_000;
const log = (message: string, level = "info") =>
	JSON.stringify([{ at: new Date().toISOString(), level, message: message.slice(0, 1000) }]);

// What the engine reads of a run's steps on every turn (not their logs or outputs, which only readers need).
const STEP_COLUMNS = `id, run_id, organization_id, position, depends_on, depends_when, node_id, wake_at, kind, title,
	config, status, idempotency_key, attempts, failures, error, approved_by, approved_at, undo_status,
	CASE WHEN kind IN ('condition', 'sub_workflow') THEN output END AS output`;

// SQL: the step row `s` (a name or alias of execution_steps) is a sleeping sub-workflow step whose child run has
// ended, so its run can go on.
export const childEnded = (s: string) => `${s}.status = 'sleeping' AND ${s}.kind = 'sub_workflow' AND EXISTS (
	SELECT 1 FROM execution_runs c WHERE c.id = (${s}.output->>'runId')::uuid
	AND c.status IN ('completed', 'failed', 'cancelled'))`;

// A step's way forward from its dependencies: open when all are settled and one at least let it through (succeeded,
// on the branch it is on), skip when all are settled and none did, wait otherwise. A plan's step (a chain, no
// branches) opens once the one before it succeeded.
function gate(s: StepRow, byPos: Map<number, StepRow>): "open" | "skip" | "wait" {
	let through = false;
	for (const d of s.depends_on) {
		const dep = byPos.get(d);
		if (dep?.status === "skipped") continue;
		if (dep?.status !== "succeeded") return "wait";
		const when = s.depends_when?.[String(d)];
		if (when === undefined || (dep.output as { result?: unknown } | null)?.result === when) through = true;
	}
	return through || !s.depends_on.length ? "open" : "skip";
}

// A run's outcome, recorded once whoever ends it (its last step, a cancel, an error outside its steps); a plan's run
// reports it as execution.plan.executed, which planning publishes again as planning.plan.executed.
export async function recordOutcome(
	tx: Queryable,
	publish: Publish,
	job: Pick<JobRow, "id" | "organization_id">,
	outcome: "succeeded" | "failed" | "cancelled"
): Promise<void> {
	const { rows } = await tx.query<{ plan_id: string | null }>(
		"UPDATE execution_runs SET outcome = $2 WHERE id = $1 AND outcome IS NULL RETURNING plan_id",
		[job.id, outcome]
	);
	if (rows[0]?.plan_id)
		publish("execution.plan.executed", {
			organizationId: job.organization_id,
			planId: rows[0].plan_id,
			runId: job.id,
			status: outcome === "succeeded" ? "success" : outcome
		});
}

export async function stepsOf(db: Queryable, runId: string, columns = STEP_COLUMNS): Promise<StepRow[]> {
	const sql = `SELECT ${columns} FROM execution_steps WHERE run_id = $1 ORDER BY position`;
	return (await db.query<StepRow>(sql, [runId])).rows;
}

// A step needs a person before it runs: an approval step, or one its plan marks irreversible (nothing undoes it).
export const needsApproval = (s: Pick<StepRow, "kind" | "config">) =>
	s.kind === "manual_approval" || s.config.irreversible === true;

function outputOf(value: unknown): string {
	const json = JSON.stringify(value ?? null);
	return json.length <= MAX_OUTPUT ? json : JSON.stringify({ truncated: true, preview: json.slice(0, 2000) });
}

// Exponential back-off with jitter: base, 2×base, 4×base … (±25%), at most a minute.
export const backoffMs = (base: number, failures: number) => jittered(exponentialDelay(base, 60_000)(failures - 1));

// Waits out a back-off unless the run is stopped meanwhile.
const pause = (ms: number, signal: AbortSignal) =>
	delay(ms, undefined, { signal }).catch(() => {
		throw new JobStopped("stopped");
	});

// Runs a step's effect under its time limit and the run's signal; a step that overruns fails (and may be retried).
const bounded = <T>(fn: (signal: AbortSignal) => Promise<T>, runSignal: AbortSignal, timeoutMs: number) =>
	withTimeLimit(fn, runSignal, timeoutMs, () => new JobStopped("stopped"));

// Keeps the step's heartbeat (seen by people watching a long step) while it runs; the run's lease has its own.
function heartbeat(stepId: string, everyMs: number): () => void {
	const timer = setInterval(() => {
		void getDb()
			.then(db => db.query("UPDATE execution_steps SET heartbeat_at = now() WHERE id = $1", [stepId], PREPARED))
			.catch(() => undefined);
	}, everyMs);
	return () => clearInterval(timer);
}

export class Engine {
	constructor(private o: EngineOptions) {}

	// Drives the run's steps until all succeeded, one failed, or what is left waits for a person. Steps start as
	// soon as their dependencies succeed; a step's success commits, in the same transaction, the start of the steps
	// it alone held back (a chain takes one transaction per step).
	async execute(run: JobRun): Promise<void> {
		for (;;) {
			const steps: Run[] = await stepsOf(await getDb(), run.job.id);
			const byPos = new Map(steps.map(s => [s.position, s]));
			const settled = (s: Run) => s.status === "succeeded" || s.status === "skipped";
			const counter = { done: steps.filter(settled).length };
			const inFlight = new Map<number, Promise<void>>();
			const errors: Error[] = [];
			const ended = () => errors.length > 0 || steps.some(s => s.status === "failed");
			const ready = (s: Run) =>
				(s.status === "pending" ||
					s.status === "running" ||
					(s.status === "sleeping" && s.wake_at !== null && s.wake_at.getTime() <= Date.now()) ||
					(s.status === "sleeping" && s.kind === "sub_workflow" && !s.parked)) &&
				gate(s, byPos) === "open";
			const schedule = () => {
				// Steps no taken branch leads to are skipped first (in position order, which follows the edges).
				for (const s of steps)
					if (s.status === "pending" && !inFlight.has(s.position) && gate(s, byPos) === "skip") {
						s.status = "skipped";
						counter.done++;
						const skip = this.skip(run, s, counter);
						inFlight.set(s.position, skip);
						void skip
							.catch(err => void errors.push(err as Error))
							.finally(() => {
								inFlight.delete(s.position);
								schedule();
							});
					}
				for (const s of steps) {
					if (inFlight.has(s.position) || !ready(s)) continue;
					// After a failure nothing new starts; a step started with the one before it is handed back.
					if (ended()) {
						s.prestarted = false;
						continue;
					}
					const running = this.runStep(run, s, counter, steps)
						.catch(err => void errors.push(err as Error))
						.finally(() => {
							inFlight.delete(s.position);
							schedule();
						});
					inFlight.set(s.position, running);
				}
			};
			schedule();
			while (inFlight.size) await Promise.race(inFlight.values());
			// Stopping wins; an unexpected error ends the run (the jobs mixin records it).
			const first = errors.find(e => e instanceof JobStopped) ?? errors[0];
			if (first) throw first;
			const failed = steps.find(s => s.status === "failed");
			if (failed)
				return this.finish(
					run,
					counter.done,
					`step ${failed.position + 1} (${failed.title}) failed: ${failed.error}`
				);
			if (counter.done === steps.length) return this.finish(run, counter.done);
			if (!steps.some(s => s.status === "waiting_approval" || s.status === "sleeping"))
				return this.finish(run, counter.done, "no step can run: their dependencies never succeed");
			// Parked under the run's lock, which an approval and the wake-up sweep take too: an approval given (or a
			// wait over) since the step began to wait is seen here and the run goes on; one after finds the run
			// waiting and queues it again.
			const parked = await run.step(
				async tx => {
					const { rows } = await tx.query(
						`SELECT 1 FROM execution_steps WHERE run_id = $1 AND ((status = 'pending' AND approved_at IS NOT NULL)
						OR (status = 'sleeping' AND wake_at <= now()) OR (${childEnded("execution_steps")}))`,
						[run.job.id]
					);
					if (rows.length) return false;
					await tx.query("UPDATE execution_runs SET status = 'waiting', lease_owner = NULL WHERE id = $1", [
						run.job.id
					]);
					return true;
				},
				() => ({ done: counter.done, total: run.job.total })
			);
			if (parked) throw new JobWaiting("waiting for approval or for a wait step's time");
		}
	}

	// Records the run's outcome (recordOutcome) and ends it; a failure ends it failed. Nothing runs any more, so a
	// step still marked running (started with one that then failed) is handed back.
	private async finish(run: JobRun, done: number, error?: string): Promise<void> {
		const total = run.job.total;
		await run.step(
			async (tx, publish) => {
				await tx.query(
					"UPDATE execution_steps SET status = 'pending' WHERE run_id = $1 AND status = 'running'",
					[run.job.id]
				);
				await recordOutcome(tx, publish, run.job, error ? "failed" : "succeeded");
			},
			() => ({ done, total })
		);
		if (error) throw new Error(error);
	}

	// `counter.done`: the run's succeeded steps, for its progress. `steps`: all of the run's, as this replica knows
	// them (it alone changes them while it holds the lease).
	private async runStep(run: JobRun, step: Run, counter: { done: number }, steps: Run[]): Promise<void> {
		const { stepTimeoutMs, retryBaseMs, heartbeatMs } = this.o.settings();
		const progress = () => ({ done: counter.done, total: run.job.total });

		if (needsApproval(step) && !step.approved_at) {
			await run.step(async (tx, publish) => {
				await tx.query(
					`UPDATE execution_steps SET status = 'waiting_approval', logs = logs || $2::jsonb WHERE id = $1`,
					[step.id, log("waiting for a person's approval")]
				);
				publish("execution.step.waiting", {
					organizationId: step.organization_id,
					runId: run.job.id,
					planId: run.job.payload.planId,
					position: step.position,
					title: step.title
				});
			}, progress);
			step.status = "waiting_approval";
			return;
		}

		if (step.kind === "wait" && !(await this.wake(run, step, progress))) return;
		if (step.kind === "sub_workflow" && step.status === "sleeping") {
			const { runId } = step.output as { runId: string };
			// An ended child is taken up by the attempt below (a failed one fails the step there).
			const outcome = await this.childOutcome(runId).catch(() => undefined);
			if (outcome?.pending) return void (step.parked = true);
		}

		const retries = Number(step.config.retries ?? 2);
		const timeoutMs = Number(step.config.timeout_ms ?? stepTimeoutMs);
		for (;;) {
			if (step.prestarted) step.prestarted = false;
			else {
				const message = attemptLog(step, this.o.node);
				step.attempts = await run.step(async tx => {
					const { rows } = await tx.query<{ attempts: number }>(
						START_SQL,
						[[step.id], log(message)],
						PREPARED
					);
					return rows[0].attempts;
				}, progress);
				step.status = "running";
			}
			const stopBeat = heartbeat(step.id, heartbeatMs);
			let output: unknown;
			let failure: Error | undefined;
			try {
				const config = await this.configOf(run, step);
				output = await bounded(
					signal =>
						step.kind === "condition"
							? Promise.resolve({ result: evaluateCondition(config as { op: ConditionOp }) })
							: step.kind === "wait"
								? Promise.resolve({ wokeAt: new Date().toISOString() })
								: STEP_RUNNERS[step.kind](this.o.env, {
										kind: step.kind,
										title: step.title,
										config,
										organizationId: step.organization_id,
										key: step.idempotency_key,
										signal,
										timeoutMs,
										approvedBy: step.approved_by
									}).then(out =>
										step.kind === "sub_workflow"
											? this.childOutcome((out as { id: string }).id)
											: out
									),
					run.signal,
					timeoutMs
				);
			} catch (err) {
				failure = err as Error;
			} finally {
				stopBeat();
			}
			if (run.signal.aborted || failure instanceof JobStopped) throw new JobStopped("stopped");
			if (!failure && (output as { pending?: boolean } | null)?.pending) {
				// A child workflow run still going: the step sleeps until it ends (the sweep wakes the run).
				const { runId } = output as { runId: string };
				await run.step(
					tx =>
						tx.query(
							`UPDATE execution_steps SET status = 'sleeping', output = $2::jsonb, logs = logs || $3::jsonb
							WHERE id = $1`,
							[step.id, JSON.stringify({ runId }), log(`waiting for workflow run ${runId}`)]
						),
					progress
				);
				Object.assign(step, { status: "sleeping", output: { runId }, parked: true });
				return;
			}
			if (!failure) {
				// The steps this one alone held back start in its success's transaction.
				// (Not past a condition: what follows it is decided by its result, in `schedule`.)
				const next = steps.filter(
					n =>
						n.status === "pending" &&
						step.kind !== "condition" &&
						Object.keys(n.depends_when ?? {}).length === 0 &&
						n.depends_on.includes(step.position) &&
						n.depends_on.every(
							d => d === step.position || steps.find(x => x.position === d)?.status === "succeeded"
						) &&
						!(needsApproval(n) && !n.approved_at)
				);
				const started = await run.step(
					async tx => {
						const { rows } = await tx.query<{ id: string; attempts: number }>(
							SUCCEED_SQL,
							[
								step.id,
								outputOf(output),
								step.config.undo ? "pending" : "none",
								log("succeeded"),
								next.map(n => n.id),
								next.length ? log(attemptLog(next[0], this.o.node)) : "[]"
							],
							PREPARED
						);
						return rows;
					},
					() => {
						counter.done++;
						return progress();
					}
				);
				step.status = "succeeded";
				step.output = output;
				for (const r of started) {
					const n = next.find(x => x.id === r.id)!;
					Object.assign(n, { status: "running", attempts: r.attempts, prestarted: true });
				}
				return;
			}
			const message = failure.message?.slice(0, 1000) || "failed";
			const failures = step.failures + 1;
			const final = failure instanceof PermanentStepError || failures > retries;
			const wait = final ? 0 : backoffMs(retryBaseMs, failures);
			await run.step(async tx => {
				await tx.query(
					`UPDATE execution_steps SET status = $2, failures = $3, error = $4, logs = logs || $5::jsonb,
						finished_at = CASE WHEN $2 = 'failed' THEN now() END WHERE id = $1`,
					[
						step.id,
						final ? "failed" : "pending",
						failures,
						message,
						log(
							final
								? `failed: ${message}`
								: `failed: ${message}; retry ${failures} of ${retries} in ${wait} ms`,
							"error"
						)
					]
				);
			}, progress);
			step.failures = failures;
			step.error = message;
			step.status = final ? "failed" : "pending";
			if (final) return;
			await pause(wait, run.signal);
		}
	}

	// A step on a branch not taken: skipped, and counted as settled.
	private async skip(run: JobRun, step: Run, counter: { done: number }): Promise<void> {
		await run.step(
			tx =>
				tx.query(
					`UPDATE execution_steps SET status = 'skipped', finished_at = now(), logs = logs || $2::jsonb
					WHERE id = $1`,
					[step.id, log("skipped: on a branch the condition did not take")]
				),
			() => ({ done: counter.done, total: run.job.total })
		);
	}

	// A wait step: when it wakes is fixed the first time it is reached (the same on every replica). True when that
	// time has come; otherwise it sleeps and the run parks once nothing else can go on.
	private async wake(run: JobRun, step: Run, progress: () => { done: number; total: number }): Promise<boolean> {
		if (!step.wake_at) {
			const config = await this.configOf(run, step);
			const wakeAt = wakeAtOf(config as { seconds?: number; until?: string }, new Date());
			await run.step(
				tx =>
					tx.query(
						`UPDATE execution_steps SET status = 'sleeping', wake_at = $2, started_at = coalesce(started_at, now()),
						logs = logs || $3::jsonb WHERE id = $1`,
						[step.id, wakeAt, log(`sleeping until ${wakeAt.toISOString()}`)]
					),
				progress
			);
			step.wake_at = wakeAt;
		}
		if (step.wake_at.getTime() <= Date.now()) return true;
		step.status = "sleeping";
		return false;
	}

	// A child workflow run's end, as its parent step's output: still going (pending), completed (with its steps'
	// outputs by node), or a permanent failure of the step.
	private async childOutcome(runId: string): Promise<Record<string, unknown>> {
		const db = await getDb();
		const { rows } = await db.query<{ status: string; error: string | null }>(
			"SELECT status, error FROM execution_runs WHERE id = $1",
			[runId]
		);
		const child = rows[0];
		if (!child) throw new PermanentStepError(`workflow run ${runId} does not exist`);
		if (!["completed", "failed", "cancelled"].includes(child.status)) return { pending: true, runId };
		if (child.status !== "completed")
			throw new PermanentStepError(`workflow run ${runId} ${child.status}: ${child.error ?? "no reason given"}`);
		const { rows: outputs } = await db.query<{ node_id: string; output: unknown }>(
			"SELECT node_id, output FROM execution_steps WHERE run_id = $1 AND status = 'succeeded'",
			[runId]
		);
		return { runId, status: child.status, steps: Object.fromEntries(outputs.map(o => [o.node_id, o.output])) };
	}

	// The step's config with its templates filled in from the run's inputs and the outputs of its steps so far.
	private async configOf(run: JobRun, step: Run): Promise<Record<string, any>> {
		if (!hasTemplates(step.config)) return step.config;
		const { rows } = await (
			await getDb()
		).query<{ node_id: string; output: unknown }>(
			"SELECT node_id, output FROM execution_steps WHERE run_id = $1 AND status = 'succeeded' AND node_id IS NOT NULL",
			[run.job.id]
		);
		const scope = {
			inputs: (run.job.payload?.inputs ?? {}) as Record<string, unknown>,
			steps: Object.fromEntries(rows.map(r => [r.node_id, r.output]))
		};
		return resolveTemplates(step.config, scope, "config", step.kind === "condition");
	}

	// Undoes the succeeded steps that have an undo request, last first. A step already undone is skipped, so a
	// rollback asked twice, or resumed by another replica, undoes nothing twice (its request carries its own key).
	async rollback(run: JobRun): Promise<void> {
		const { stepTimeoutMs, retryBaseMs } = this.o.settings();
		const steps = (await stepsOf(await getDb(), run.job.id)).filter(s =>
			["pending", "running", "failed"].includes(s.undo_status)
		);
		steps.sort((a, b) => b.position - a.position);
		const total = run.job.total;
		let undone = 0;
		for (const step of steps) {
			const retries = Number(step.config.retries ?? 2);
			const timeoutMs = Number(step.config.timeout_ms ?? stepTimeoutMs);
			for (let failures = 0; ;) {
				await run.step(
					tx =>
						tx.query(
							"UPDATE execution_steps SET undo_status = 'running', logs = logs || $2::jsonb WHERE id = $1",
							[step.id, log(`undoing on ${this.o.node}`)]
						),
					() => ({ done: undone, total })
				);
				try {
					await bounded(
						signal =>
							sendRequest(
								this.o.env,
								step.config.undo as StepRequest,
								`${step.idempotency_key}:undo`,
								signal
							),
						run.signal,
						timeoutMs
					);
				} catch (err) {
					if (run.signal.aborted || err instanceof JobStopped) throw new JobStopped("stopped");
					failures++;
					const message = (err as Error).message?.slice(0, 1000) || "failed";
					const final = err instanceof PermanentStepError || failures > retries;
					await run.step(
						tx =>
							tx.query(
								`UPDATE execution_steps SET undo_status = $2, logs = logs || $3::jsonb WHERE id = $1`,
								[step.id, final ? "failed" : "pending", log(`undo failed: ${message}`, "error")]
							),
						() => ({ done: undone, total })
					);
					if (final) throw new Error(`undoing step ${step.position + 1} (${step.title}) failed: ${message}`);
					await pause(backoffMs(retryBaseMs, failures), run.signal);
					continue;
				}
				undone++;
				await run.step(
					tx =>
						tx.query(
							`UPDATE execution_steps SET undo_status = 'done', undone_at = now(), logs = logs || $2::jsonb
							WHERE id = $1`,
							[step.id, log("undone")]
						),
					() => ({ done: undone, total })
				);
				break;
			}
		}
		await run.step(
			tx => tx.query("UPDATE execution_runs SET rolled_back_at = now() WHERE id = $1", [run.job.id]),
			() => ({ done: undone, total })
		);
	}
}

export type { Publish };
