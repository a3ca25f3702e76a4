// Completion logs leave the request's path: rows and their events are queued and written in one transaction per
// batch (every `batchMs`, or sooner when many are waiting). With batchMs = 0 each is written before the answer.
// They are usage and cost history: a batch the database refuses stays queued and is tried again with back-off, so
// an outage loses nothing unless it outlasts `maxPending` entries (then the oldest go, and say so).
import type { Db, Queryable } from "../../lib/db";
import { writeManyToOutbox } from "../../lib/events/outbox";
import { exponentialDelay } from "../../lib/resilience";
import { redact } from "../../lib/redact";
import type { Outcome, Run } from "./run";

export interface LogEntry {
	values?: unknown[]; // in COLUMNS order; created_at is the request's end, not the batch's transaction time (none: events only)

	events: { id: string; type: string }[];
}

export interface LogWriterOptions {
	maxPending: number; // entries kept while the database is unreachable
	retryMinMs: number; // first retry after a failed write; doubles up to retryMaxMs
	retryMaxMs: number;
}

const COLUMNS = `request_id, organization_id, user_id, api_key_id, kind, requested_model, served_model, provider_id, fallback_path,
	stream, cache_hit, prompt_tokens, completion_tokens, cached_tokens, cost, latency_ms, first_token_ms, status, error, request_body, response_body,
	created_at, service, prompt`;
const WIDTH = 24;
const MAX_BATCH = 200; // 4,600 parameters per INSERT, well under PostgreSQL's 65,535
const BACKLOG = 2 * MAX_BATCH; // entries waiting past which a request waits for the write in progress
const DEFAULTS: LogWriterOptions = { maxPending: 20_000, retryMinMs: 500, retryMaxMs: 30_000 };

// A request's completion-log row, in COLUMNS order. Its bodies only where the organization stores content; the
// upstream's words with every secret sent to it cut out.
export function completionValues(run: Run, r: Outcome, storeContent: boolean): unknown[] {
	const body = storeContent ? JSON.stringify(run.target.body) : null;
	const response = storeContent && r.response ? JSON.stringify(r.response) : null;
	const { usage } = r;
	return [
		run.requestId,
		run.org,
		run.auth.userId ?? null,
		run.auth.apiKeyId ?? null,
		run.kind,
		run.target.requested,
		r.servedModel ?? null,
		r.provider?.id ?? null,
		run.path,
		run.stream,
		r.cacheHit ?? false,
		usage?.prompt ?? 0,
		usage?.completion ?? 0,
		usage?.cached ?? 0,
		r.cost ?? 0,
		Date.now() - run.started,
		r.firstTokenMs ?? null,
		r.status,
		r.error ? redact(r.error, run.secrets) : null,
		body,
		response,
		new Date(),
		// A service acting without a user (lib/permissions.ts AuthInfo kind "service") is the actor.
		run.auth.service ?? null,
		run.prompt ? JSON.stringify(run.prompt) : null
	];
}

export class LogWriter {
	private queue: LogEntry[] = [];
	private timer?: NodeJS.Timeout;
	private retryTimer?: NodeJS.Timeout;
	private failures = 0;
	private dropped = 0; // given up since the last report
	private writing: Promise<void> = Promise.resolve();
	private draining = false; // a drain is writing; it takes whatever is queued before it ends
	private batchWritten: Promise<void> = Promise.resolve(); // the write in progress, settled either way
	private options: LogWriterOptions;
	private delay: (attempt: number) => number;

	constructor(
		// Runs fn in a transaction whose outbox events are relayed after commit (EventsMixin.withEvents).
		private inTransaction: (fn: (tx: Queryable) => Promise<void>) => Promise<void>,
		private batchMs: number,
		// A write failed: `pending` entries wait for the retry, `dropped` (the oldest) were given up.
		private onError: (err: Error, pending: number, dropped: number) => void,
		options: Partial<LogWriterOptions> = {}
	) {
		this.options = { ...DEFAULTS, ...options };
		this.delay = exponentialDelay(this.options.retryMinMs, this.options.retryMaxMs);
	}

	async add(entry: LogEntry) {
		this.queue.push(entry);
		this.trim();
		if (this.retryTimer) return; // the database is failing: the retry takes it
		if (this.batchMs === 0) return this.flush();
		if (this.queue.length < MAX_BATCH) {
			this.timer ??= setTimeout(() => this.flush(), this.batchMs);
			return;
		}
		// A full batch is written at once, without the request that filled it waiting (nor those after it while the write
		// runs: the write in progress takes them next). When they waited, every request arriving during a slow write
		// waited for all of it: embedded, 750 req/s was not sustained and 500 req/s now and then had a p99 of 2–4 s
		// (bench/README.md).
		if (!this.draining) void this.flush();
		// Far behind, a request waits for the batch being written: a database slower than the traffic slows the
		// traffic instead of filling memory until entries are given up.
		if (this.queue.length >= BACKLOG) return this.batchWritten;
	}

	// Writes everything queued now (after any write in progress), unless a failed write's retry is pending.
	flush(): Promise<void> {
		clearTimeout(this.timer);
		this.timer = undefined;
		this.writing = this.writing.then(() => this.drain());
		return this.writing;
	}

	// At shutdown: one last attempt. Returns how many entries could still not be written (they go with the process).
	async close(): Promise<number> {
		clearTimeout(this.retryTimer);
		this.retryTimer = undefined;
		await this.flush();
		clearTimeout(this.retryTimer);
		this.retryTimer = undefined;
		return this.queue.length;
	}

	// Past maxPending the oldest waiting entries are given up (a batch being written is not in the queue).
	private trim() {
		const over = this.queue.length - this.options.maxPending;
		if (over <= 0) return;
		this.queue.splice(0, over);
		this.dropped += over;
	}

	// MAX_BATCH entries per transaction, oldest first; a failed batch goes back to the front of the queue.
	private async drain() {
		if (this.retryTimer) return; // backing off: the retry writes
		this.draining = true;
		try {
			while (this.queue.length) {
				// Out of the queue while it is written, so that entries added meanwhile (and given up past the bound)
				// are never confused with it.
				const batch = this.queue.splice(0, MAX_BATCH);
				const written = this.inTransaction(tx => write(tx, batch));
				this.batchWritten = written.then(
					() => undefined,
					() => undefined
				);
				try {
					await written;
				} catch (err) {
					this.queue.unshift(...batch);
					this.trim();
					this.failures++;
					this.onError(err as Error, this.queue.length, this.dropped);
					this.dropped = 0;
					const delay = this.delay(this.failures - 1);
					clearTimeout(this.retryTimer);
					this.retryTimer = setTimeout(() => {
						this.retryTimer = undefined;
						this.flush();
					}, delay).unref();
					return;
				}
				this.failures = 0;
			}
		} finally {
			this.draining = false;
		}
	}
}

// One statement for the rows, one for their events.
async function write(tx: Queryable, batch: LogEntry[]) {
	const rows = batch.flatMap(e => (e.values ? [e.values] : []));
	const tuples = rows.map(
		(_, r) => `(${Array.from({ length: WIDTH }, (_, c) => `$${r * WIDTH + c + 1}`).join(", ")})`
	);
	if (rows.length)
		await tx.query(`INSERT INTO ai_completion_logs (${COLUMNS}) VALUES ${tuples.join(", ")}`, rows.flat());
	await writeManyToOutbox(
		tx,
		batch.flatMap(e => e.events)
	);
}

const PRUNE_BATCH = 5000;

// Drops completion log rows older than their organization's retention (ai_settings.log_retention_days; none set:
// kept for good). In batches, so a first prune of a large log never holds one long lock; any replica may run it.
export async function pruneCompletionLogs(db: Db): Promise<number> {
	let deleted = 0;
	for (;;) {
		const { rowCount } = await db.query(
			`DELETE FROM ai_completion_logs WHERE id IN (
				SELECT l.id FROM ai_settings s JOIN ai_completion_logs l ON l.organization_id = s.organization_id
				WHERE s.log_retention_days IS NOT NULL AND l.created_at < now() - make_interval(days => s.log_retention_days)
				LIMIT ${PRUNE_BATCH})`
		);
		deleted += rowCount;
		if (rowCount < PRUNE_BATCH) return deleted;
	}
}
