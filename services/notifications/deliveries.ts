// The delivery worker: every replica of the notifications service sends the e-mail and webhook deliveries that are
// due. A batch is claimed with FOR UPDATE SKIP LOCKED and a lease (claimed_until), like the outbox relay
// (lib/events/outbox.ts), so replicas share the rows and a replica that dies mid-send leaves its rows to the others
// when the lease ends. A failure waits retryBase · 2^attempt (at most an hour); after maxAttempts it is final.
import type { Db, Queryable } from "../../lib/db";
import { exponentialDelay } from "../../lib/resilience";

export interface DeliveryRow {
	id: string;
	organization_id: string;
	notification_id: string | null;
	channel_id: string | null;
	channel: "email" | "webhook";
	user_id: string | null;
	event_id: string;
	event_type: string;
	event: Record<string, unknown> & { type: string; id: string };
	count: number;
	attempts: number;
}

export interface WorkerOptions {
	pollMs: number;
	retryBaseMs: number;
	maxAttempts: number;
	batch?: number;
	leaseMs?: number;
	// Sends one delivery; throws with a message fit for users (no secret) when it failed.
	send(row: DeliveryRow): Promise<void>;
	// A delivery ended failed: written in the transaction that marks it (an event through the outbox).
	failed(tx: Queryable, row: DeliveryRow & { attempts: number }): Promise<void>;
	warn(message: string): void;
}

export class DeliveryWorker {
	private timer?: NodeJS.Timeout;
	private running?: Promise<void>;
	private again = false;
	private stopped = true;
	private backoff: (attempt: number) => number;

	constructor(
		private db: Db,
		private o: WorkerOptions
	) {
		this.backoff = exponentialDelay(o.retryBaseMs, 3_600_000);
	}

	start() {
		this.stopped = false;
		this.schedule(0);
	}

	// New deliveries were committed: look now rather than at the next poll.
	kick() {
		if (this.stopped) return;
		if (this.running) this.again = true;
		else this.schedule(0);
	}

	private schedule(ms: number) {
		if (this.timer) clearTimeout(this.timer);
		this.timer = setTimeout(() => this.run(), ms);
		this.timer.unref?.();
	}

	private run() {
		if (this.running || this.stopped) return;
		this.running = this.drain()
			.catch(err => this.o.warn(`notification deliveries pass failed: ${(err as Error).message}`))
			.finally(() => {
				this.running = undefined;
				if (this.stopped) return;
				const now = this.again;
				this.again = false;
				this.schedule(now ? 0 : this.o.pollMs);
			});
	}

	private async drain() {
		const batch = this.o.batch ?? 50;
		while (!this.stopped) {
			const rows = await this.claim(batch);
			if (!rows.length) return;
			await Promise.all(rows.map(row => this.deliver(row)));
			if (rows.length < batch) return;
		}
	}

	// Due rows, leased to this replica. A lease outlives any send (each has its own timeout).
	async claim(batch: number): Promise<DeliveryRow[]> {
		const { rows } = await this.db.query<DeliveryRow>(
			`UPDATE notifications_deliveries SET claimed_until = now() + ($2 || ' milliseconds')::interval
			 WHERE id IN (
			   SELECT id FROM notifications_deliveries
			   WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now()
			     AND (claimed_until IS NULL OR claimed_until < now())
			   ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
			 RETURNING id, organization_id, notification_id, channel_id, channel, user_id, event_id, event_type, event,
			   count, attempts`,
			[batch, String(this.o.leaseMs ?? 120_000)]
		);
		return rows;
	}

	private async deliver(row: DeliveryRow) {
		let error: string | undefined;
		try {
			await this.o.send(row);
		} catch (err) {
			error = String((err as Error)?.message ?? err).slice(0, 1000) || "failed";
		}
		const attempts = row.attempts + 1;
		await this.db.transaction(async tx => {
			if (error === undefined) {
				await tx.query(
					`UPDATE notifications_deliveries SET status = 'sent', attempts = $2, sent_at = now(), last_error = NULL,
					 claimed_until = NULL, updated_at = now() WHERE id = $1`,
					[row.id, attempts]
				);
				return;
			}
			const final = attempts >= this.o.maxAttempts;
			await tx.query(
				`UPDATE notifications_deliveries SET status = $2, attempts = $3, last_error = $4, claimed_until = NULL,
				 next_attempt_at = now() + ($5 || ' milliseconds')::interval, updated_at = now() WHERE id = $1`,
				[row.id, final ? "failed" : "retrying", attempts, error, String(this.backoff(attempts - 1))]
			);
			if (final) await this.o.failed(tx, { ...row, attempts });
		});
	}

	async stop() {
		this.stopped = true;
		if (this.timer) clearTimeout(this.timer);
		await this.running;
	}
}
