// The engine over a run's steps. A run is a set of steps with dependencies (`depends_on`, positions); every step
// whose dependencies have succeeded is ready, and ready steps run side by side (a plan is a chain, so one at a
// time). Each step's state is committed before its effect starts (running, attempt n) and after it ends (succeeded
// with its output, or failed), in transactions that hold only while this replica holds the run's lease
// (mixins/jobs.mixin.ts `run.step`). A replica killed anywhere leaves the run to another after the lease runs out:
// succeeded steps are never run again, and the step it was in is run again with the same idempotency key.
import type { Queryable } from "../../lib/db";
import { getDb } from "../../lib/db";
import { JobStopped, JobWaiting, type JobRun } from "../../mixins/jobs.mixin";
import type { Publish } from "../../mixins/events.mixin";
import type { StepKind, StepRequest } from "../planning/planning.kinds";
import { PermanentStepError, sendRequest, STEP_RUNNERS, type StepEnv } from "./step-kinds";

export type StepStatus = "pending" | "running" | "waiting_approval" | "succeeded" | "failed";
export type UndoStatus = "none" | "pending" | "running" | "done" | "failed";

export interface StepRow {
	id: string;
	run_id: string;
	organization_id: string;
	position: number;
	depends_on: number[];
	kind: StepKind;
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

export interface EngineOptions {
	env: StepEnv;
	settings: () => { stepTimeoutMs: number; retryBaseMs: number; heartbeatMs: number };
	node: string;
}

const MAX_OUTPUT = 16_000;
const log = (message: string, level = "info") =>
	JSON.stringify([{ at: new Date().toISOString(), level, message: message.slice(0, 1000) }]);

export async function stepsOf(db: Queryable, runId: string): Promise<StepRow[]> {
	return (await db.query<StepRow>("SELECT * FROM execution_steps WHERE run_id = $1 ORDER BY position", [runId])).rows;
}

// A step needs a person before it runs: an approval step, or one its plan marks irreversible (nothing undoes it).
export const needsApproval = (s: Pick<StepRow, "kind" | "config">) =>
	s.kind === "manual_approval" || s.config.irreversible === true;

function outputOf(value: unknown): string {
	const json = JSON.stringify(value ?? null);
	return json.length <= MAX_OUTPUT ? json : JSON.stringify({ truncated: true, preview: json.slice(0, 2000) });
}

// Exponential back-off with jitter: base, 2×base, 4×base … (±25%), at most a minute.
export function backoffMs(base: number, failures: number): number {
	const ms = Math.min(60_000, base * 2 ** Math.max(0, failures - 1));
	return Math.round(ms * (0.75 + Math.random() * 0.5));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve, reject) => {
		if (signal.aborted) return reject(new JobStopped("stopped"));
		const timer = setTimeout(() => {
			signal.removeEventListener("abort", onAbort);
			resolve();
		}, ms);
		const onAbort = () => {
			clearTimeout(timer);
			reject(new JobStopped("stopped"));
		};
		signal.addEventListener("abort", onAbort, { once: true });
	});
}

// Runs fn under the step's time limit and the run's signal; a step that overruns fails (and may be retried).
async function bounded<T>(
	fn: (signal: AbortSignal) => Promise<T>,
	runSignal: AbortSignal,
	timeoutMs: number
): Promise<T> {
	const timeout = AbortSignal.timeout(timeoutMs);
	const signal = AbortSignal.any([runSignal, timeout]);
	let onAbort: () => void = () => undefined;
	const aborted = new Promise<never>((_, reject) => {
		onAbort = () =>
			reject(timeout.aborted ? new Error(`timed out after ${timeoutMs} ms`) : new JobStopped("stopped"));
		signal.addEventListener("abort", onAbort, { once: true });
	});
	try {
		return await Promise.race([fn(signal), aborted]);
	} finally {
		signal.removeEventListener("abort", onAbort);
	}
}

// Keeps the step's heartbeat (seen by people watching a long step) while it runs; the run's lease has its own.
function heartbeat(stepId: string, everyMs: number): () => void {
	const timer = setInterval(() => {
		void getDb()
			.then(db => db.query("UPDATE execution_steps SET heartbeat_at = now() WHERE id = $1", [stepId]))
			.catch(() => undefined);
	}, everyMs);
	return () => clearInterval(timer);
}

export class Engine {
	constructor(private o: EngineOptions) {}

	// Drives the run's steps until all succeeded, one failed, or one waits for a person.
	async execute(run: JobRun): Promise<void> {
		for (;;) {
			const steps = await stepsOf(await getDb(), run.job.id);
			const done = steps.filter(s => s.status === "succeeded").length;
			const failed = steps.find(s => s.status === "failed");
			if (failed)
				return this.finish(run, done, `step ${failed.position + 1} (${failed.title}) failed: ${failed.error}`);
			if (done === steps.length) return this.finish(run, done);
			const state = new Map(steps.map(s => [s.position, s.status]));
			const ready = steps.filter(
				s => s.status !== "succeeded" && s.depends_on.every(d => state.get(d) === "succeeded")
			);
			if (!ready.length) return this.finish(run, done, "no step can run: their dependencies never succeed");
			const results = await Promise.allSettled(ready.map(s => this.runStep(run, s)));
			const errors = results.flatMap(r => (r.status === "rejected" ? [r.reason as Error] : []));
			// Stopping wins over waiting; an unexpected error ends the run (the jobs mixin records it).
			const first =
				errors.find(e => e instanceof JobStopped) ?? errors.find(e => !(e instanceof JobWaiting)) ?? errors[0];
			if (first) throw first;
		}
	}

	// Records the plan's outcome once (planning.plan.executed) and ends the run; a failure ends it failed.
	private async finish(run: JobRun, done: number, error?: string): Promise<void> {
		const total = run.job.total;
		await run.step(
			async (tx, publish) => {
				const { rows } = await tx.query<{ plan_id: string }>(
					"UPDATE execution_runs SET outcome = $2 WHERE id = $1 AND outcome IS NULL RETURNING plan_id",
					[run.job.id, error ? "failed" : "succeeded"]
				);
				if (rows[0])
					publish("planning.plan.executed", {
						organizationId: run.job.organization_id,
						planId: rows[0].plan_id,
						runId: run.job.id,
						status: error ? "failed" : "success"
					});
			},
			() => ({ done, total })
		);
		if (error) throw new Error(error);
	}

	private async runStep(run: JobRun, step: StepRow): Promise<void> {
		const { stepTimeoutMs, retryBaseMs, heartbeatMs } = this.o.settings();
		const doneBefore = async (tx: Queryable) =>
			(
				await tx.query<{ n: number }>(
					"SELECT count(*)::int AS n FROM execution_steps WHERE run_id = $1 AND status = 'succeeded'",
					[run.job.id]
				)
			).rows[0].n;
		const progress = (n: number) => ({ done: n, total: run.job.total });

		if (needsApproval(step) && !step.approved_at) {
			// Parked in the transaction that marks the step, so an approval never finds one without the other.
			await run.step(async (tx, publish) => {
				await tx.query(
					`UPDATE execution_steps SET status = 'waiting_approval', logs = logs || $2::jsonb WHERE id = $1`,
					[step.id, log("waiting for a person's approval")]
				);
				await tx.query("UPDATE execution_runs SET status = 'waiting', lease_owner = NULL WHERE id = $1", [
					run.job.id
				]);
				publish("execution.step.waiting", {
					organizationId: step.organization_id,
					runId: run.job.id,
					planId: run.job.payload.planId,
					position: step.position,
					title: step.title
				});
				return doneBefore(tx);
			}, progress);
			throw new JobWaiting("waiting for approval");
		}

		const retries = Number(step.config.retries ?? 2);
		const timeoutMs = Number(step.config.timeout_ms ?? stepTimeoutMs);
		for (;;) {
			const resumed = step.status === "running";
			const started = await run.step(
				async tx => {
					const { rows } = await tx.query<StepRow>(
						`UPDATE execution_steps SET status = 'running', attempts = attempts + 1,
						started_at = coalesce(started_at, now()), heartbeat_at = now(), logs = logs || $2::jsonb
						WHERE id = $1 RETURNING *`,
						[
							step.id,
							log(
								resumed
									? `attempt ${step.attempts + 1} on ${this.o.node}: resumed after the replica running it stopped`
									: `attempt ${step.attempts + 1} on ${this.o.node}`
							)
						]
					);
					return { row: rows[0], n: await doneBefore(tx) };
				},
				r => progress(r.n)
			);
			Object.assign(step, started.row);
			const stopBeat = heartbeat(step.id, heartbeatMs);
			let output: unknown;
			let failure: Error | undefined;
			try {
				output = await bounded(
					signal =>
						STEP_RUNNERS[step.kind](this.o.env, {
							kind: step.kind,
							title: step.title,
							config: step.config,
							organizationId: step.organization_id,
							key: step.idempotency_key,
							signal,
							timeoutMs,
							approvedBy: step.approved_by
						}),
					run.signal,
					timeoutMs
				);
			} catch (err) {
				failure = err as Error;
			} finally {
				stopBeat();
			}
			if (run.signal.aborted || failure instanceof JobStopped) throw new JobStopped("stopped");
			if (!failure) {
				await run.step(async tx => {
					const undo = step.config.undo ? "pending" : "none";
					await tx.query(
						`UPDATE execution_steps SET status = 'succeeded', output = $2::jsonb, error = NULL,
							finished_at = now(), undo_status = $3, logs = logs || $4::jsonb WHERE id = $1`,
						[step.id, outputOf(output), undo, log("succeeded")]
					);
					return doneBefore(tx);
				}, progress);
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
				return doneBefore(tx);
			}, progress);
			step.failures = failures;
			step.status = final ? "failed" : "pending";
			if (final) return;
			await sleep(wait, run.signal);
		}
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
					await sleep(backoffMs(retryBaseMs, failures), run.signal);
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
