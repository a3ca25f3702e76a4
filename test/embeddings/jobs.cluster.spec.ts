// A job survives its replica: an ingest job runs on one embeddings replica (a child process over RabbitMQ), which is
// killed with SIGKILL mid-way; another replica claims it once the lease runs out, continues from the job's cursor
// and finishes with every document stored once and no duplicate chunks.
import amqp from "amqplib";
import pg from "pg";
import { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { startNode, TEST_JWT_SECRET, TEST_TRANSIT_KEY } from "../helpers/process";
import { as } from "../helpers/broker";
import { waitUntil } from "../helpers/wait";
import { loadConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";

type NodeProcess = ReturnType<typeof startNode>;

jest.setTimeout(120_000);

describeWith(["postgres", "rabbitmq"])("embedding jobs across replicas (kill -9)", () => {
	const NAMESPACE = uniqueNamespace("emb");
	const ID = NAMESPACE.split("-")[1];
	const CALLER_ID = `caller-${ID}`;
	let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
	let sql: pg.Client;
	const nodes: NodeProcess[] = [];
	let caller: ServiceBroker;
	let admin: any;

	const env = () => ({
		TRANSPORTER: AMQP_URL,
		CHANNELS_URL: AMQP_URL,
		DATABASE_URL: db!.url,
		NAMESPACE,
		JWT_SECRET: TEST_JWT_SECRET,
		TRANSIT_KEY: TEST_TRANSIT_KEY,
		EMBEDDINGS_JOB_LEASE_MS: "2000",
		EMBEDDINGS_JOB_POLL_MS: "200"
	});
	const replica = (n: number) => {
		const node = startNode({ ...env(), SERVICES: "embeddings", NODE_ID: `emb-${n}-${ID}` });
		nodes.push(node);
		return node;
	};
	const job = async (id: string) => (await sql.query("SELECT * FROM emb_jobs WHERE id = $1", [id])).rows[0];

	beforeAll(async () => {
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		const auth = startNode({ ...env(), SERVICES: "auth", NODE_ID: `auth-${ID}` });
		nodes.push(auth);
		await auth.ready;
		caller = new ServiceBroker({
			...brokerOptions(loadConfig({ ...env(), NODE_ID: CALLER_ID, LOG_LEVEL: "warn" })),
			logger: false
		});
		await caller.start();
		await caller.waitForServices(["auth"], 20_000);
		const reg: any = await caller.call("auth.register", {
			email: "emb-cluster@example.com",
			password: "correct horse battery",
			name: "Cluster"
		});
		admin = await caller.call("auth.resolve", { token: reg.accessToken, organizationId: reg.organization.id });
	}, 90_000);

	afterAll(async () => {
		await caller?.stop().catch(() => undefined);
		await Promise.all(nodes.map(n => n.stop("SIGKILL")));
		await sql?.end().catch(() => undefined);
		await db?.drop();
		const conn = await amqp.connect(AMQP_URL).catch(() => undefined);
		if (conn) {
			const ch = await conn.createChannel();
			for (const id of [CALLER_ID, ...nodes.map(n => n.nodeID)])
				for (const kind of ["REQ", "RES", "EVENT"])
					await ch.deleteQueue(`MOL-${NAMESPACE}.${kind}.${id}`).catch(() => undefined);
			await conn.close().catch(() => undefined);
		}
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
