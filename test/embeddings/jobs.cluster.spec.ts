// A job survives its replica: an ingest job runs on one embeddings replica (a child process over RabbitMQ), which is
// killed with SIGKILL mid-way; another replica claims it once the lease runs out, continues from the job's cursor
// and finishes with every document stored once and no duplicate chunks.
import pg from "pg";
import { ServiceBroker } from "moleculer";
import { describeWith } from "../helpers/infra";
import { startTestCluster, type TestCluster } from "../helpers/cluster";
import { as } from "../helpers/broker";
import { waitUntil } from "../helpers/wait";
import type { AuthInfo } from "../../lib/permissions";

jest.setTimeout(120_000);

describeWith(["postgres", "rabbitmq"])("embedding jobs across replicas (kill -9)", () => {
	let cluster: TestCluster;
	let sql: pg.Client;
	let caller: ServiceBroker;
	let admin: AuthInfo;

	const replica = (n: number) => cluster.start(`emb-${n}`, "embeddings");
	const job = async (id: string) => (await sql.query("SELECT * FROM emb_jobs WHERE id = $1", [id])).rows[0];

	beforeAll(async () => {
		cluster = await startTestCluster("emb", { EMBEDDINGS_JOB_LEASE_MS: "2000", EMBEDDINGS_JOB_POLL_MS: "200" });
		sql = new pg.Client({ connectionString: cluster.db.url });
		await sql.connect();
		await cluster.start("auth", "auth").ready;
		caller = await cluster.caller(["auth"]);
		admin = await cluster.register("emb-cluster@example.com");
	}, 90_000);

	afterAll(async () => {
		await sql?.end().catch(() => undefined);
		await cluster?.stop();
	});

	test("a job whose replica is killed mid-way is resumed by another and finishes without duplicate chunks", async () => {
		const first = replica(1);
		await first.ready;
		await caller.waitForServices(["embeddings", "embeddings-collections", "embeddings-jobs"], 20_000);
		const c: any = await caller.call("embeddings-collections.create", { name: "survivor" }, as(admin));
		const documents = Array.from({ length: 1500 }, (_, i) => ({
			sourceId: `s${i}`,
			text: `record ${i}: ${"lorem ipsum dolor sit amet ".repeat(1 + (i % 5))}`,
			metadata: { i }
		}));
		const queued: any = await caller.call("embeddings.ingest", { id: c.id, documents }, as(admin));

		await waitUntil(
			"replica 1 is mid-way",
			() => job(queued.id),
			j => j.done >= 100,
			60_000
		);
		expect((await job(queued.id)).lease_owner).toMatch(new RegExp(`^${first.nodeID}:`));
		const second = replica(2);
		await second.ready;
		first.proc.kill("SIGKILL");
		await first.exited;
		const at = (await job(queued.id)).done;
		expect(at).toBeLessThan(1500);

		const end = await waitUntil(
			"the job finished",
			() => job(queued.id),
			j => j.status !== "running",
			90_000
		);
		expect(end).toMatchObject({ status: "completed", done: 1500, total: 1500, attempts: 2 });
		const counts = (
			await sql.query(
				`SELECT (SELECT count(*)::int FROM emb_documents WHERE collection_id = $1) AS documents,
					(SELECT count(*)::int FROM emb_chunks WHERE collection_id = $1) AS chunks,
					(SELECT count(*)::int FROM (SELECT document_id, index FROM emb_chunks WHERE collection_id = $1
						GROUP BY document_id, index HAVING count(*) > 1) d) AS duplicates,
					(SELECT count(*)::int FROM emb_documents d WHERE collection_id = $1
						AND NOT EXISTS (SELECT 1 FROM emb_chunks k WHERE k.document_id = d.id)) AS without`,
				[c.id]
			)
		).rows[0];
		expect(counts).toEqual({ documents: 1500, chunks: 1500, duplicates: 0, without: 0 });
		const started = await sql.query(
			"SELECT count(*)::int AS n FROM outbox WHERE payload->>'jobId' = $1 AND payload->>'type' = 'embedding.job.started'",
			[queued.id]
		);
		expect(started.rows[0].n).toBe(1);
		// On the surviving replica (the caller may not have noticed the dead node yet).
		const found: any = await caller.call(
			"embeddings.search",
			{ id: c.id, query: "record 1499", mode: "fulltext", k: 1 },
			{ ...as(admin), nodeID: second.nodeID }
		);
		expect(found.results[0].sourceId).toBe("s1499");
	});
});
