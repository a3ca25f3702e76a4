// Embedded mode's in-process channel adapter under a burst: the outbox relay waits for the consumers instead of
// overrunning them, so a backlog of hundreds of events, handled by a slow consumer, is handled whole, each event once.
// And a channel's `types`: other events are acknowledged before any transaction.
import crypto from "crypto";
import pg from "pg";
import { Loggers, ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, uniqueNamespace } from "../helpers/infra";
import { createTestBroker } from "../helpers/broker";
import { waitUntil } from "../helpers/wait";
import { makeEvent } from "../../lib/events/outbox";
import { DEMO_CHANNEL, DEMO_TABLES_SQL, DEMO_GROUP } from "../fixtures/services/demo-groups";

jest.setTimeout(120_000);

const BURST = 400;
const PROJECT_ID = "00000000-0000-4000-8000-000000000001";

// Keeps what the broker logs at warn and above.
class CaptureLogger extends Loggers.Base<{ level: "warn" }> {
	lines: string[] = [];
	getLogHandler() {
		return (type: Loggers.LogLevels, args: unknown[]) => {
			if (type === "warn" || type === "error" || type === "fatal")
				this.lines.push(`${type}: ${args.map(a => (a instanceof Error ? a.message : String(a))).join(" ")}`);
		};
	}
}

describeWith(["postgres"])("embedded delivery under a burst", () => {
	let broker: ServiceBroker;
	let stop: (() => Promise<void>) | undefined;
	let pool: pg.Pool;
	let drop: (() => Promise<void>) | undefined;
	const logger = new CaptureLogger({ level: "warn" });
	const sql = async (text: string, params: unknown[] = []) => (await pool.query(text, params)).rows;

	beforeAll(async () => {
		process.env.DEMO_CONSUMER_DELAY_MS = "10";
		const db = await createTestDatabase();
		drop = db.drop;
		pool = new pg.Pool({ connectionString: db.url, max: 2 });
		pool.on("error", () => undefined);
		await pool.query(DEMO_TABLES_SQL);
		const t = await createTestBroker(
			{ DATABASE_URL: db.url, NAMESPACE: uniqueNamespace("burst"), SERVICES_DIR: "test/fixtures/services" },
			[
				"test/fixtures/services/demo-producer/demo-producer.service.ts",
				"test/fixtures/services/demo-consumer/demo-consumer.service.ts"
			],
			{ logger }
		);
		broker = t.broker;
		stop = t.stop;
	});
	afterAll(async () => {
		delete process.env.DEMO_CONSUMER_DELAY_MS;
		await stop?.();
		await pool?.end();
		await drop?.();
	});

	test("a backlog of hundreds of events reaches a slow consumer whole: each event once, no dead letter, no error", async () => {
		await broker.call("demo-producer.createMany", { stream: "burst", count: BURST });
		const handled = () =>
			sql(
				`SELECT count(*)::int AS rows, count(DISTINCT h.event_id)::int AS ids FROM demo_handled h
				 JOIN demo_articles a ON a.event_id = h.event_id WHERE a.stream = 'burst' AND h.consumer_group = $1`,
				[DEMO_GROUP]
			).then(r => r[0]);
		const published = () =>
			sql("SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL").then(r => r[0].n as number);
		// Every outbox row published (in-process: handled by its consumers), or the relay gave up on some.
		await waitUntil("the outbox to be drained", published, n => n === 0, 60_000, 100);
		// In-process, published means handled: this finds them at once (an event dropped on the way never comes).
		expect(await waitUntil("every event handled", handled, h => h.ids >= BURST, 20_000)).toEqual({
			rows: BURST,
			ids: BURST
		});
		expect(await sql("SELECT event_id FROM dead_letter_events")).toEqual([]);
		expect(logger.lines).toEqual([]);
	});

	test("an event of a type the channel's `types` leaves out is acknowledged with no transaction and no record", async () => {
		const other = { type: "demo.article.archived", id: crypto.randomUUID(), time: new Date().toISOString() };
		const created = makeEvent("demo.article.created", { articleId: crypto.randomUUID(), projectId: PROJECT_ID });
		// In-process, sending resolves once the consumer has taken each.
		await (broker as any).sendToChannel(DEMO_CHANNEL, other);
		await (broker as any).sendToChannel(DEMO_CHANNEL, created);
		const recorded = await sql(
			"SELECT event_id FROM processed_events WHERE consumer_group = $1 AND event_id = ANY($2::uuid[])",
			[DEMO_GROUP, [other.id, created.id]]
		);
		expect(recorded).toEqual([{ event_id: created.id }]);
	});
});
