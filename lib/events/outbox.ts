// The outbox relay: events are written to `outbox` inside the business transaction and published from here,
// with retries and back-off, so an event is never lost when the broker is down at commit time.
// Several replicas relay the same table safely: a batch is claimed with FOR UPDATE SKIP LOCKED.
import crypto from "crypto";
import type { ServiceBroker } from "moleculer";
import type { Db, Queryable } from "../db";
import { AmqpTopology } from "./topology";
import { exponentialDelay } from "../resilience";
import { channelOf, EventData, EventType, PlatformEvent } from "./types";

export interface OutboxRow {
	id: string;
	channel: string;
	payload: any;
	attempts: number;
}

// The rows one message carries, and in AMQP mode its serialized body.
interface Pack {
	rows: OutboxRow[];
	body?: string;
}

export function makeEvent<T extends EventType>(type: T, data: EventData<T>): Extract<PlatformEvent, { type: T }> {
	const id = crypto.randomUUID();
	const time = new Date().toISOString();
	// Data that carries an envelope field of its own (untyped input) must not replace it.
	if ("type" in data || "id" in data || "time" in data) return { ...data, type, id, time } as any;
	// The envelope's fields first, then the data's: several times faster in V8 than adding fields after a spread
	// (an event or three are made per AI request).
	return { type, id, time, ...data } as any;
}

// Writes events in the caller's transaction, in one statement: they are published only if it commits.
export async function writeManyToOutbox(tx: Queryable, events: { id: string; type: string }[], channel?: string) {
	if (!events.length) return;
	const values: unknown[] = [];
	const tuples = events.map(
		e =>
			`($${values.push(e.id)}, $${values.push(channel ?? channelOf(e.type))}, $${values.push(JSON.stringify(e))})`
	);
	await tx.query(`INSERT INTO outbox (id, channel, payload) VALUES ${tuples.join(", ")}`, values);
}

const BATCH = 100;
// A message's size cap in AMQP mode, far below RabbitMQ's own (16 MiB by default since 4.0).
const PACK_MAX_BYTES = 1 << 20;
const PRUNE_EVERY_MS = 10 * 60_000;
const PROCESSED_KEEP_DAYS = 30;
// A row that failed n times waits 500 ms · 2^n, at most a minute, before its next attempt.
const backoff = exponentialDelay(500, 60_000);

export class OutboxRelay {
	private timer?: NodeJS.Timeout;
	private running?: Promise<void>;
	private again = false;
	private stopped = false;
	private prunedAt = Date.now();
	private undeclared = new Set<string>();

	constructor(
		private broker: ServiceBroker,
		private db: Db,
		private topology?: AmqpTopology,
		private pollMs = 1000
	) {}

	start() {
		this.stopped = false;
		this.schedule(0);
	}

	// Channels this process publishes to: their exchanges and consumer groups' queues are declared at the next pass,
	// before any event of theirs is due, so a deployment's topology exists from its first start.
	publishesTo(channels: string[]) {
		if (!this.topology) return;
		for (const c of channels) this.undeclared.add(c);
		this.kick();
	}

	// Called after a commit that wrote events: publish now rather than at the next poll.
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
			.catch(err => this.broker.logger.warn("Outbox relay pass failed:", err.message))
			.finally(() => {
				this.running = undefined;
				if (this.stopped) return;
				const immediately = this.again;
				this.again = false;
				this.schedule(immediately ? 0 : this.pollMs);
			});
	}

	// One pass: publishes batches until nothing is due; now and then removes rows published long ago. start() and
	// kick() schedule passes; the tests and bench/outbox-relay.ts run one directly.
	async drain() {
		if (Date.now() - this.prunedAt > PRUNE_EVERY_MS) {
			this.prunedAt = Date.now();
			await this.prune();
		}
		// Publishing declares again anyway (once per connection): a failure here only waits for the next pass.
		for (const channel of this.undeclared)
			await this.topology?.ensure(channel).then(
				() => this.undeclared.delete(channel),
				() => undefined
			);
		// A stopping node leaves what is still due to the next start (or another replica) rather than sending it to
		// channels that are closing, which would only count a failed attempt on every row.
		while (!this.stopped) {
			// In-process, publishing waits for the consumers, whose transactions must not queue behind the relay's (the
			// embedded database runs one at a time), and one process relays: no transaction, no row locks.
			const published = this.topology
				? await this.db.transaction(tx => this.relayBatch(tx, true))
				: await this.relayBatch(this.db, false);
			if (published < BATCH) return;
		}
	}

	private async relayBatch(tx: Queryable, lock: boolean): Promise<number> {
		const { rows } = await tx.query<OutboxRow>(
			`SELECT id, channel, payload, attempts FROM outbox
			 WHERE published_at IS NULL AND next_attempt_at <= now()
			 ORDER BY created_at LIMIT ${BATCH}${lock ? " FOR UPDATE SKIP LOCKED" : ""}`
		);
		// The whole batch is sent, then each row is marked by its own message's outcome (a publisher confirm in AMQP
		// mode).
		const sent = new Map<OutboxRow, Promise<void>>();
		for (const pack of this.packs(rows)) {
			let outcome: Promise<void>;
			try {
				await this.topology?.ensure(pack.rows[0].channel);
				outcome = this.publish(pack);
			} catch (err) {
				outcome = Promise.reject(err);
			}
			outcome.catch(() => undefined);
			for (const row of pack.rows) sent.set(row, outcome);
		}
		const published: string[] = [];
		for (const row of rows) {
			try {
				await sent.get(row);
				published.push(row.id);
			} catch (err: any) {
				await tx.query(
					`UPDATE outbox SET attempts = attempts + 1, last_error = $2,
					 next_attempt_at = now() + ($3 || ' milliseconds')::interval WHERE id = $1`,
					[row.id, String(err?.message ?? err).slice(0, 500), String(backoff(row.attempts))]
				);
			}
		}
		if (published.length)
			await tx.query(
				"UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY($1::uuid[])",
				[published]
			);
		return rows.length;
	}

	// A pass's rows of one channel, in order, in as few messages as the size cap allows: RabbitMQ's work (enqueue,
	// confirm, deliver, ack, in every consumer group's queue) is per message, whatever it holds. One event travels as
	// itself, several as a JSON array of them (consumers take both: mixins/events.mixin.ts). In AMQP mode each pack
	// comes with its body, each event serialized once.
	private *packs(rows: OutboxRow[]): Generator<Pack> {
		const byChannel = new Map<string, OutboxRow[]>();
		for (const row of rows) {
			const list = byChannel.get(row.channel);
			if (list) list.push(row);
			else byChannel.set(row.channel, [row]);
		}
		for (const list of byChannel.values()) {
			if (!this.topology) {
				yield { rows: list }; // in-process: no message, no size to keep under
				continue;
			}
			let pack: OutboxRow[] = [];
			let parts: string[] = [];
			let bytes = 0;
			const body = () => (parts.length === 1 ? parts[0] : `[${parts.join(",")}]`);
			for (const row of list) {
				const json = JSON.stringify(row.payload);
				if (pack.length && bytes + json.length > PACK_MAX_BYTES) {
					yield { rows: pack, body: body() };
					pack = [];
					parts = [];
					bytes = 0;
				}
				pack.push(row);
				parts.push(json);
				bytes += json.length + 1;
			}
			yield { rows: pack, body: body() };
		}
	}

	// In AMQP mode through the topology's confirm channel: published means RabbitMQ has it. Embedded: the in-process
	// adapter, where published means each consumer group has taken it (lib/events/channels.ts).
	private publish({ rows, body }: Pack): Promise<void> {
		const [first] = rows;
		const headers =
			rows.length === 1
				? { "x-event-id": first.id, "x-event-type": first.payload.type }
				: { "x-event-count": rows.length };
		if (this.topology) return this.topology.publish(first.channel, body!, headers);
		const payload = rows.length === 1 ? first.payload : rows.map(r => r.payload);
		return Promise.resolve(
			(this.broker as any).sendToChannel(first.channel, payload, { persistent: true, headers } as any)
		);
	}

	async stop() {
		this.stopped = true;
		if (this.timer) clearTimeout(this.timer);
		await this.running;
		await this.topology?.close();
	}

	// Published rows are kept a while for inspection, then removed. Consumers' records of handled events go after
	// PROCESSED_KEEP_DAYS: far beyond any redelivery (retries end in minutes, then the dead-letter queue).
	async prune(olderThanHours = 24) {
		await this.db.query(`DELETE FROM outbox WHERE published_at < now() - ($1 || ' hours')::interval`, [
			String(olderThanHours)
		]);
		await this.db.query(`DELETE FROM processed_events WHERE processed_at < now() - ($1 || ' days')::interval`, [
			String(PROCESSED_KEEP_DAYS)
		]);
	}
}
