// Completion logs leave the request's path: rows and their events are queued and written in one transaction per
// batch (every `batchMs`, or sooner when many are waiting). With batchMs = 0 each is written before the answer.
import type { Db, Queryable } from "../../lib/db";
import { writeManyToOutbox } from "../../lib/events/outbox";

export interface LogEntry {
	values?: unknown[]; // in COLUMNS order; created_at is the request's end, not the batch's transaction time (none: events only)

	events: { id: string; type: string }[];
}

const COLUMNS = `request_id, organization_id, user_id, api_key_id, kind, requested_model, served_model, provider_id, fallback_path,
	stream, cache_hit, prompt_tokens, completion_tokens, cached_tokens, cost, latency_ms, first_token_ms, status, error, request_body, response_body,
	created_at`;
const WIDTH = 22;
const MAX_BATCH = 200;

export class LogWriter {
	private queue: LogEntry[] = [];
	private timer?: NodeJS.Timeout;
	private writing: Promise<void> = Promise.resolve();

	constructor(
		// Runs fn in a transaction whose outbox events are relayed after commit (EventsMixin.withEvents).
		private inTransaction: (fn: (tx: Queryable) => Promise<void>) => Promise<void>,
		private batchMs: number,
		private onError: (err: Error, lost: number) => void
	) {}

	async add(entry: LogEntry) {
		this.queue.push(entry);
		if (this.batchMs === 0 || this.queue.length >= MAX_BATCH) return this.flush();
		this.timer ??= setTimeout(() => this.flush(), this.batchMs);
	}

	flush(): Promise<void> {
		if (this.timer) clearTimeout(this.timer);
		this.timer = undefined;
		const batch = this.queue.splice(0);
		if (!batch.length) return this.writing;
		this.writing = this.writing.then(() =>
			this.inTransaction(async tx => {
				// One statement for the rows, one for their events.
				const rows = batch.flatMap(e => (e.values ? [e.values] : []));
				const tuples = rows.map((_, r) => `(${Array.from({ length: WIDTH }, (_, c) => `$${r * WIDTH + c + 1}`).join(", ")})`);
				if (rows.length) await tx.query(`INSERT INTO ai_completion_logs (${COLUMNS}) VALUES ${tuples.join(", ")}`, rows.flat());
				await writeManyToOutbox(tx, batch.flatMap(e => e.events));
			}).catch(err => this.onError(err, batch.length))
		);
		return this.writing;
	}
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
