// Usage ingestion over RabbitMQ with real child processes: a consumer killed (SIGKILL) while it works through a
// stream of usage events, some of them delivered twice, loses and duplicates nothing — a second consumer takes
// over and every aggregate equals each event counted once.
import pg from "pg";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { startNode } from "../helpers/process";
import { deleteRabbitObjects } from "../helpers/rabbit";
import { waitUntil } from "../helpers/wait";
import { openPostgres } from "../../lib/db/driver";
import { migrate } from "../../lib/db/migrate";
import { declareUsageQueue, publishEvents } from "./publish";
import { totalsOf, usageEvent } from "./events";

jest.setTimeout(180_000);

describeWith(["postgres", "rabbitmq"])("usage ingestion, consumer killed mid-batch (child processes)", () => {
	const ns = uniqueNamespace("usage");
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let pool: pg.Pool;
	const nodes: ReturnType<typeof startNode>[] = [];

	beforeAll(async () => {
		db = await createTestDatabase();
		const conn = await openPostgres(db.url, 2);
		await migrate(conn);
		await conn.close();
		pool = new pg.Pool({ connectionString: db.url, max: 2 });
		pool.on("error", () => undefined);
	});

	afterAll(async () => {
		for (const n of nodes) await n.stop("SIGKILL");
		await pool?.end();
		await deleteRabbitObjects([ns]).catch(() => undefined);
		await db?.drop();
	});

	const consumer = (name: string) => {
		const node = startNode({
			NAMESPACE: ns,
			NODE_ID: `${ns}-${name}`,
			SERVICES: "usage",
			CHANNELS_URL: AMQP_URL,
			DATABASE_URL: db.url
		});
		nodes.push(node);
		return node;
	};
	const count = async () => (await pool.query("SELECT count(*)::int AS n FROM usage_events")).rows[0].n as number;

	test("SIGKILL during ingestion, then a new consumer: every event counted exactly once", async () => {
		const org = (await pool.query("INSERT INTO organizations (name, slug) VALUES ('o', 'o') RETURNING id")).rows[0]
			.id as string;
		const events = Array.from({ length: 20_000 }, (_, i) =>
			usageEvent(org, {
				model: `m${i % 4}`,
				inputTokens: 1 + (i % 97),
				outputTokens: i % 13,
				cachedTokens: i % 3,
				toolCalls: i % 10 === 0 ? 2 : 0,
				occurredAt: new Date(Date.UTC(2026, 5, 1) + i * 60_000).toISOString()
			})
		);
		// Every tenth event is also published a second time, later in the stream (a relay's redelivery).
		const stream = [...events, ...events.filter((_, i) => i % 10 === 0)];
		await declareUsageQueue(ns);
		await publishEvents(ns, stream);

		const first = consumer("first");
		first.ready.catch(() => undefined); // it may be killed before it says it is up
		await waitUntil("ingestion under way", count, n => n > 2000, 60_000, 20);
		first.proc.kill("SIGKILL");
		await first.exited;
		const at = await count();
		expect(at).toBeLessThan(events.length); // killed mid-stream

		// Published after everything else: once it is recorded, the single consumer has settled all before it.
		const sentinel = usageEvent(org, {
			model: "sentinel",
			occurredAt: new Date(Date.UTC(2026, 5, 2)).toISOString()
		});
		await publishEvents(ns, [sentinel]);
		const second = consumer("second");
		await second.ready;
		await waitUntil(
			"the sentinel recorded",
			async () => (await pool.query("SELECT 1 FROM usage_events WHERE id = $1", [sentinel.id])).rowCount,
			n => n === 1,
			120_000,
			200
		);
		expect(await count()).toBe(events.length + 1);
		const [{ n: processed }] = (
			await pool.query("SELECT count(*)::int AS n FROM processed_events WHERE consumer_group = 'usage'")
		).rows;
		expect(processed).toBe(events.length + 1);
		const expected = totalsOf([...events, sentinel]);
		for (const table of ["usage_aggregates_hourly", "usage_aggregates_daily", "usage_aggregates_monthly"]) {
			const { rows } = await pool.query(
				`SELECT sum(input_tokens)::int AS input_tokens, sum(output_tokens)::int AS output_tokens,
				 sum(cached_tokens)::int AS cached_tokens, sum(requests)::int AS requests,
				 sum(tool_calls)::int AS tool_calls, sum(embeddings)::int AS embeddings FROM ${table}`
			);
			expect([table, rows[0]]).toEqual([table, expected]);
		}
	});
});
