// JobsMixin: durable background jobs in a module's jobs table, run by whichever replica claims them. A job is claimed
// with FOR UPDATE SKIP LOCKED under a lease the runner keeps alive by heartbeats; a replica that dies (kill -9) stops
// renewing it, and another replica claims the job once the lease has run out and continues from the job's cursor.
// Work is done in steps (`run.step`), each one transaction that also records the cursor and progress, so a step is
// either fully done and recorded or not at all; steps must be idempotent because the step a replica died in before
// committing is run again. A handler that must wait for a person throws JobWaiting: the job is parked ('waiting',
// claimed by no one) until `resumeJob` queues it again. Cancel marks the row; the runner stops at its next step or
// heartbeat. At most `perOrganization` jobs of one organization run at once over all replicas (an advisory lock per
// organization makes the count and the claim one decision). Progress is published as the module's `<prefix>.progress`
// event (throttled) and pushed to open pages as a live notice with `progress` (lib/live.ts); both are optional (agent
// runs tell their own progress).
//
// The table needs: id uuid, organization_id uuid, kind text, status text ('queued' | 'running' | 'completed' |
// 'failed' | 'cancelled'; 'waiting' where handlers park), payload jsonb, cursor jsonb, done int, total int, error
// text, lease_owner text, lease_until timestamptz, attempts int, created_at, started_at, finished_at (see
// migrations/embeddings/0001_*.sql).
import crypto from "crypto";
import type { Service, ServiceBroker } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { getDb, Queryable } from "../lib/db";
import { announceChange } from "../lib/live";
import type { Publish } from "./events.mixin";
import type { EventType } from "../lib/events/types";

export type JobStatus = "queued" | "running" | "waiting" | "completed" | "failed" | "cancelled";

export interface JobRow {
	id: string;
	organization_id: string;
	kind: string;
	status: JobStatus;
	payload: any;
	cursor: any;
	done: number;
	total: number;
	error: string | null;
	attempts: number;
	[column: string]: unknown;
}

// Thrown inside a step when the job was cancelled or this replica lost its lease: the runner stops quietly.
export class JobStopped extends Error {
	name = "JobStopped";
}

// Thrown by a handler that cannot go on until someone acts (an approval): the job is parked, not failed.
export class JobWaiting extends Error {
	name = "JobWaiting";
}

export interface JobRun {
	job: JobRow;
	// Aborted when the job is cancelled, its lease is lost or the service stops.
	signal: AbortSignal;
	// One idempotent unit of work in a transaction that also records where the job is (cursor, done, total). Runs only
	// while this replica holds the job, checked in that transaction (the job row locked): a cancel that committed
	// before it throws JobStopped and nothing of the step is kept; one that comes during it waits for it.
	step<T>(
		fn: (tx: Queryable, publish: Publish) => Promise<T>,
		next: (result: T) => { cursor?: unknown; done: number; total?: number }
	): Promise<T>;
}

// `S`: the service's own `this` (a JobsService with what the handlers use).
export type JobHandler<S extends JobsService = JobsService> = (this: S, run: JobRun) => Promise<void>;

export interface JobsMixinOptions<S extends JobsService = JobsService> {
	table: string;
	handlers: Record<string, JobHandler<S>>;
	// Read when the service starts (the module's settings); `perReplica` there overrides the option below.
	settings: () => { perOrganization: number; leaseMs: number; pollMs: number; perReplica?: number };
	// Event types: "<prefix>.started" | ".progress" | ".completed" | ".failed" (the module's events file types them).
	// Without it no event is published (the jobs' own records tell what happened) and the service needs no outbox.
	eventPrefix?: string;
	// Extra event fields from a job row (e.g. its collection).
	eventData?: (job: JobRow) => Record<string, unknown>;
	// Live notices to open pages: the jobs' service name and the permission to read them (none without it).
	live?: JobsLive;
	// Undoes what a job leaves half done when it fails or is cancelled (`why`), in the transaction that records that,
	// and may publish what that means to the module (publish: the module's outbox, or nothing without eventPrefix).
	ended?: (tx: Queryable, job: JobRow, publish: Publish, why: "failed" | "cancelled") => Promise<void>;
	// Jobs one replica runs at once (of all organizations); 0: this replica runs none.
	perReplica?: number;
	// Least time between two progress events of one job.
	progressEveryMs?: number;
	// Least time between two live progress notices of one job to open pages (default: progressEveryMs).
	liveEveryMs?: number;
}

export interface JobsService extends Service {
	jobsOwner: string;
	jobsRunning: Map<string, AbortController>;
	jobsFinishing: Set<Promise<void>>;
	jobsTimer?: NodeJS.Timeout;
	jobsPolling?: Promise<void>;
	jobsPollAgain?: boolean;
	jobsStopped: boolean;
	jobsSettings: { perOrganization: number; leaseMs: number; pollMs: number; perReplica?: number };
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
	enqueueJob(
		tx: Queryable,
		job: {
			organizationId: string;
			kind: string;
			payload: unknown;
			total: number;
			columns?: Record<string, unknown>;
		}
	): Promise<JobRow>;
	cancelJob(organizationId: string, id: string): Promise<JobRow | undefined>;
	pollJobs(): void;
	claimJobs(free: number): Promise<JobRow[]>;
	runJob(job: JobRow): Promise<void>;
	announceJob(job: Pick<JobRow, "id" | "organization_id" | "kind" | "done" | "total">): void;
}

// Queues a parked ('waiting') job again, in the caller's transaction (with the change it waited for); `kickJobs`
// after the commit. False when the job was not waiting. A handler that parks its job itself in the `run.step` that
// checks what it waits for (as the execution engine does) is never resumed between the check and the park.
export async function resumeJob(tx: Queryable, table: string, id: string): Promise<boolean> {
	if (!COLUMN.test(table)) throw new Error(`resumeJob: "${table}" is not a table name`);
	const { rowCount } = await tx.query(`UPDATE ${table} SET status = 'queued' WHERE id = $1 AND status = 'waiting'`, [
		id
	]);
	return (rowCount ?? 0) > 0;
}

const COLUMN = /^[a-z_][a-z0-9_]*$/;
// The statements every step and heartbeat runs: parsed and planned once per connection (lib/db/driver.ts).
const PREPARED = { prepare: true };

// Inserts a queued job in the caller's transaction (with the change that asks for it). After the commit,
// `kickJobs` has the runners of every replica look at once (the one that queued it may have no room).
export async function insertJob(
	tx: Queryable,
	table: string,
	job: { organizationId: string; kind: string; payload: unknown; total: number; columns?: Record<string, unknown> }
): Promise<JobRow> {
	const columns = Object.entries(job.columns ?? {});
	for (const c of [table, ...columns.map(([c]) => c)])
		if (!COLUMN.test(c)) throw new Error(`insertJob: "${c}" is not a name`);
	const names = ["organization_id", "kind", "payload", "total", ...columns.map(([c]) => c)];
	const values = [job.organizationId, job.kind, JSON.stringify(job.payload), job.total, ...columns.map(([, v]) => v)];
	const { rows } = await tx.query<JobRow>(
		`INSERT INTO ${table} (${names.join(", ")}) VALUES (${names.map((_, i) => `$${i + 1}`).join(", ")}) RETURNING *`,
		values
	);
	return rows[0];
}

export type JobsLive = { entity: string; noun: string; permission: string };

// Also tells open pages of the new job: progress notices only come once it runs, and a queued job behind another
// would otherwise stay unseen until that one ends.
export function kickJobs(broker: ServiceBroker, table: string, queued?: { job: JobRow; live?: JobsLive }): void {
	if (queued?.live) announceJobChange(broker, queued.live, queued.job, "created");
	void broker.broadcast(`jobs.queued.${table}`);
}

function announceJobChange(
	broker: ServiceBroker,
	live: JobsLive,
	job: Pick<JobRow, "id" | "organization_id" | "kind" | "done" | "total">,
	action: "created" | "updated"
): void {
	announceChange(broker, undefined, {
		organizationId: job.organization_id,
		entity: live.entity,
		noun: live.noun,
		id: job.id,
		action,
		label: job.kind,
		permission: live.permission,
		progress: { done: job.done, total: job.total }
	});
}

export function JobsMixin<S extends JobsService>(opts: JobsMixinOptions<S>): Partial<ServiceSchema> {
	const t = opts.table;
	if (!COLUMN.test(t)) throw new Error(`JobsMixin: "${t}" is not a table name`);
	const perReplica = opts.perReplica ?? 4;
	const progressEveryMs = opts.progressEveryMs ?? 1000;
	const liveEveryMs = opts.liveEveryMs ?? progressEveryMs;
	const type = (what: string) => `${opts.eventPrefix}.${what}` as EventType;
	// The module's outbox when it publishes the jobs' events; a plain transaction otherwise.
	const inTransaction = async <T>(
		self: JobsService,
		fn: (tx: Queryable, publish: Publish) => Promise<T>
	): Promise<T> =>
		opts.eventPrefix
			? self.withEvents(fn)
			: (await getDb()).transaction(tx => fn(tx, (() => undefined) as unknown as Publish));
	const data = (job: JobRow, extra: Record<string, unknown>) =>
		({
			organizationId: job.organization_id,
			jobId: job.id,
			kind: job.kind,
			...opts.eventData?.(job),
			...extra
		}) as any;

	return {
		methods: {
			// Marks a queued or running job cancelled; its runner stops at its next step or heartbeat. Undefined: no
			// such job of the organization; a finished job is returned unchanged.
			async cancelJob(this: JobsService, organizationId: string, id: string) {
				return inTransaction(this, async (tx, publish) => {
					const { rows } = await tx.query<JobRow>(
						`UPDATE ${t} SET status = 'cancelled', finished_at = now(), lease_owner = NULL
						WHERE id = $1 AND organization_id = $2 AND status IN ('queued', 'running', 'waiting') RETURNING *`,
						[id, organizationId]
					);
					if (rows[0]) {
						await opts.ended?.(tx, rows[0], publish, "cancelled");
						publish(type("failed"), data(rows[0], { error: "cancelled" }));
						return rows[0];
					}
					const found = await tx.query<JobRow>(`SELECT * FROM ${t} WHERE id = $1 AND organization_id = $2`, [
						id,
						organizationId
					]);
					return found.rows[0];
				}).then(job => {
					if (job) this.announceJob(job);
					return job;
				});
			},

			// Claims and starts jobs while this replica has room; one poll at a time. A poll asked for while one is under
			// way runs again after it (the job that asked may have committed after that poll looked).
			pollJobs(this: JobsService) {
				if (this.jobsStopped) return;
				if (this.jobsPolling) {
					this.jobsPollAgain = true;
					return;
				}
				this.jobsPollAgain = false;
				this.jobsPolling = (async () => {
					try {
						for (;;) {
							const free = (this.jobsSettings.perReplica ?? perReplica) - this.jobsRunning.size;
							if (this.jobsStopped || free <= 0) break;
							const jobs = await this.claimJobs(free);
							for (const job of jobs) {
								const running = this.runJob(job);
								this.jobsFinishing.add(running);
								void running.finally(() => this.jobsFinishing.delete(running));
							}
							// Fewer than asked: nothing more is claimable now.
							if (jobs.length < free) break;
						}
					} catch (err) {
						this.logger.warn(`jobs of ${t} not claimed: ${(err as Error).message}`);
					} finally {
						this.jobsPolling = undefined;
						if (this.jobsPollAgain) setImmediate(() => this.pollJobs());
					}
				})();
			},

			// Up to `free` of the oldest queued jobs, or running ones whose lease ran out, in one transaction: each
			// organization's share is what its limit leaves after the jobs it has running over all replicas.
			async claimJobs(this: JobsService, free: number) {
				const { perOrganization, leaseMs } = this.jobsSettings;
				const db = await getDb();
				return db.transaction(async tx => {
					// A few more than wanted, so that an organization at its limit does not hold back the others.
					const candidates = await tx.query<{ id: string; organization_id: string }>(
						`SELECT id, organization_id FROM ${t}
						WHERE status = 'queued' OR (status = 'running' AND lease_until < now())
						ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
						[free + 20]
					);
					if (!candidates.rows.length) return [];
					// One claimer per organization at a time: the count below and the claim are one decision. The locks are
					// taken in one order by every claimer (no deadlock), and the count is read after them (a new statement
					// sees the claims committed before it).
					const orgs = [...new Set(candidates.rows.map(c => c.organization_id))].sort();
					for (const org of orgs)
						await tx.query("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", [t, org]);
					const running = await tx.query<{ organization_id: string; n: number }>(
						`SELECT organization_id, count(*)::int AS n FROM ${t} WHERE organization_id = ANY($1::uuid[])
						AND status = 'running' AND lease_until >= now() AND id <> ALL($2::uuid[])
						GROUP BY organization_id`,
						[orgs, candidates.rows.map(c => c.id)]
					);
					const room = new Map(orgs.map(o => [o, perOrganization]));
					for (const r of running.rows) room.set(r.organization_id, perOrganization - r.n);
					const ids: string[] = [];
					for (const c of candidates.rows) {
						if (ids.length >= free) break;
						const left = room.get(c.organization_id)!;
						if (left <= 0) continue;
						room.set(c.organization_id, left - 1);
						ids.push(c.id);
					}
					if (!ids.length) return [];
					// (The claim's time is the clock's, not the transaction's start: that may be before a job it waited
					// on finished.)
					const { rows } = await tx.query<JobRow>(
						`UPDATE ${t} SET status = 'running', lease_owner = $2,
						lease_until = clock_timestamp() + $3 * interval '1 millisecond', attempts = attempts + 1,
						started_at = coalesce(started_at, clock_timestamp()) WHERE id = ANY($1::uuid[]) RETURNING *`,
						[ids, this.jobsOwner, leaseMs]
					);
					// In the order they were queued.
					const order = new Map(ids.map((id, i) => [id, i]));
					return rows.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
				});
			},

			async runJob(this: JobsService, job: JobRow) {
				const { leaseMs } = this.jobsSettings;
				const abort = new AbortController();
				this.jobsRunning.set(job.id, abort);
				const db = await getDb();
				const owner = this.jobsOwner;
				let lastProgress = 0;
				let lastNotice = 0;
				const stop = () => {
					if (!abort.signal.aborted) abort.abort(new JobStopped("the job was cancelled or taken over"));
				};
				// Renews the lease between steps (a step may wait long on a model); a lost lease stops the runner.
				const heartbeat = setInterval(
					() => {
						db.query(
							`UPDATE ${t} SET lease_until = now() + $3 * interval '1 millisecond'
						WHERE id = $1 AND lease_owner = $2 AND status = 'running' RETURNING id`,
							[job.id, owner, leaseMs],
							PREPARED
						).then(
							r => r.rowCount === 0 && stop(),
							err => this.logger.warn(`job ${job.id} heartbeat failed: ${(err as Error).message}`)
						);
					},
					Math.max(100, Math.floor(leaseMs / 3))
				);

				const run: JobRun = {
					job,
					signal: abort.signal,
					step: async (fn, next) => {
						if (abort.signal.aborted) throw new JobStopped("stopped");
						let announce = false;
						const result = await inTransaction(this, async (tx, publish) => {
							const held = await tx.query<{ status: string; lease_owner: string | null }>(
								`SELECT status, lease_owner FROM ${t} WHERE id = $1 FOR UPDATE`,
								[job.id],
								PREPARED
							);
							if (held.rows[0]?.status !== "running" || held.rows[0].lease_owner !== owner)
								throw new JobStopped("the job was cancelled or taken over");
							const out = await fn(tx, publish);
							const n = next(out);
							job.done = n.done;
							if (n.total != null) job.total = n.total;
							if (n.cursor !== undefined) job.cursor = n.cursor;
							await tx.query(
								`UPDATE ${t} SET cursor = $2, done = $3, total = $4,
								lease_until = now() + $5 * interval '1 millisecond' WHERE id = $1`,
								[job.id, JSON.stringify(job.cursor ?? null), job.done, job.total, leaseMs],
								PREPARED
							);
							if (Date.now() - lastProgress >= progressEveryMs || job.done >= job.total) {
								lastProgress = Date.now();
								publish(type("progress"), data(job, { done: job.done, total: job.total }));
							}
							if (Date.now() - lastNotice >= liveEveryMs || job.done >= job.total) {
								lastNotice = Date.now();
								announce = true;
							}
							return out;
						});
						if (announce) this.announceJob(job);
						return result;
					}
				};

				try {
					if (job.attempts === 1 && opts.eventPrefix)
						await this.withEvents(async (_tx, publish) => {
							publish(type("started"), data(job, { total: job.total }));
						});
					this.announceJob(job);
					const handler = opts.handlers[job.kind];
					if (!handler) throw new Error(`no handler for jobs of kind "${job.kind}"`);
					await handler.call(this as S, run);
					await inTransaction(this, async (tx, publish) => {
						const { rowCount } = await tx.query(
							`UPDATE ${t} SET status = 'completed', finished_at = now(), lease_owner = NULL
							WHERE id = $1 AND lease_owner = $2 AND status = 'running'`,
							[job.id, owner]
						);
						if (rowCount) publish(type("completed"), data(job, { done: job.done, total: job.total }));
					});
				} catch (err) {
					if (err instanceof JobWaiting && !abort.signal.aborted) {
						await db
							.query(
								`UPDATE ${t} SET status = 'waiting', lease_owner = NULL
								WHERE id = $1 AND lease_owner = $2 AND status = 'running'`,
								[job.id, owner]
							)
							.catch(e => this.logger.warn(`job ${job.id}: wait not recorded: ${e.message}`));
					} else if (!(err instanceof JobStopped) && !abort.signal.aborted) {
						const message = (err as Error).message?.slice(0, 1000) || "failed";
						this.logger.warn(`job ${job.id} (${job.kind}) failed: ${message}`);
						await inTransaction(this, async (tx, publish) => {
							const { rowCount } = await tx.query(
								`UPDATE ${t} SET status = 'failed', error = $3, finished_at = now(), lease_owner = NULL
								WHERE id = $1 AND lease_owner = $2 AND status = 'running'`,
								[job.id, owner, message]
							);
							if (!rowCount) return;
							await opts.ended?.(tx, job, publish, "failed");
							publish(type("failed"), data(job, { error: message }));
						}).catch(e => this.logger.warn(`job ${job.id}: failure not recorded: ${e.message}`));
					}
				} finally {
					clearInterval(heartbeat);
					this.jobsRunning.delete(job.id);
					this.announceJob(job);
					setImmediate(() => this.pollJobs());
				}
			},

			announceJob(this: JobsService, job) {
				if (opts.live) announceJobChange(this.broker, opts.live, job, "updated");
			}
		},

		events: {
			[`jobs.queued.${t}`](this: JobsService) {
				this.pollJobs();
			}
		},

		created(this: Service) {
			const self = this as JobsService;
			self.jobsOwner = `${self.broker.nodeID}:${crypto.randomUUID()}`;
			self.jobsRunning = new Map();
			self.jobsFinishing = new Set();
			self.jobsStopped = false;
		},

		async started(this: Service) {
			const self = this as JobsService;
			self.jobsSettings = opts.settings();
			self.jobsTimer = setInterval(() => self.pollJobs(), self.jobsSettings.pollMs);
			self.pollJobs();
		},

		// Running jobs are handed back at once (lease expired now) so another replica continues them without waiting.
		async stopped(this: Service) {
			const self = this as JobsService;
			self.jobsStopped = true;
			clearInterval(self.jobsTimer);
			await self.jobsPolling;
			const ids = [...self.jobsRunning.keys()];
			for (const abort of self.jobsRunning.values()) abort.abort(new JobStopped("the service stops"));
			// The step under way ends (committed or not) before the database may close.
			await Promise.allSettled([...self.jobsFinishing]);
			if (ids.length)
				await (
					await getDb()
				)
					.query(`UPDATE ${t} SET lease_until = now() WHERE id = ANY($1::uuid[]) AND lease_owner = $2`, [
						ids,
						self.jobsOwner
					])
					.catch(() => undefined);
		}
	};
}
