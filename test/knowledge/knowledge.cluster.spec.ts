// An edit is searchable within 5 s in cluster mode: auth, embeddings and two knowledge replicas as separate
// processes over RabbitMQ (transporter and durable channels). The edit is saved through one replica; its event goes through the
// outbox and the knowledge.events channel to whichever replica's indexer takes it; the search runs on the other
// replica. The 5 s limit of the wait is the requirement itself.
import amqp from "amqplib";
import { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { startNode, TEST_JWT_SECRET, TEST_TRANSIT_KEY } from "../helpers/process";
import { deleteRabbitObjects } from "../helpers/rabbit";
import { as } from "../helpers/broker";
import { waitUntil } from "../helpers/wait";
import { loadConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";

type NodeProcess = ReturnType<typeof startNode>;
jest.setTimeout(120_000);

describeWith(["postgres", "rabbitmq"])("knowledge in cluster mode", () => {
	const NAMESPACE = uniqueNamespace("kb");
	const ID = NAMESPACE.split("-")[1];
	const CALLER_ID = `caller-${ID}`;
	let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
	const nodes: NodeProcess[] = [];
	let r1: NodeProcess, r2: NodeProcess;
	let caller: ServiceBroker;
	let owner: any;

	const env = () => ({
		TRANSPORTER: AMQP_URL,
		CHANNELS_URL: AMQP_URL,
		DATABASE_URL: db!.url,
		NAMESPACE,
		JWT_SECRET: TEST_JWT_SECRET,
		TRANSIT_KEY: TEST_TRANSIT_KEY
	});
	const on = (node: NodeProcess) => ({ ...as(owner), nodeID: node.nodeID });

	beforeAll(async () => {
		db = await createTestDatabase();
		nodes.push(startNode({ ...env(), SERVICES: "auth", NODE_ID: `auth-${ID}` }));
		nodes.push(startNode({ ...env(), SERVICES: "embeddings", NODE_ID: `emb-${ID}` }));
		// One replica after the other: in one of nine runs with both started at once, a replica's subscription to
		// knowledge.events failed at start-up ("Channel ended, no reply will be forthcoming"; cause not found yet).
		r1 = startNode({ ...env(), SERVICES: "knowledge", NODE_ID: `kb-1-${ID}` });
		nodes.push(r1);
		await Promise.all(nodes.map(n => n.ready));
		r2 = startNode({ ...env(), SERVICES: "knowledge", NODE_ID: `kb-2-${ID}` });
		nodes.push(r2);
		await r2.ready;
		caller = new ServiceBroker({
			...brokerOptions(loadConfig({ ...env(), NODE_ID: CALLER_ID, LOG_LEVEL: "warn" })),
			logger: false
		});
		await caller.start();
		await caller.waitForServices(["auth", "embeddings", "knowledge", "knowledge-articles"], 30_000);
		await waitUntil(
			"knowledge.search on both replicas",
			async () =>
				((caller as any).registry.getActionEndpoints("knowledge.search")?.endpoints ?? [])
					.filter((ep: any) => ep.isAvailable)
					.map((ep: any) => ep.id)
					.sort(),
			ids => JSON.stringify(ids) === JSON.stringify([r1.nodeID, r2.nodeID].sort())
		);
		const reg: any = await caller.call("auth.register", {
			email: "kb-cluster@example.com",
			password: "correct horse battery",
			name: "KB"
		});
		owner = await caller.call("auth.resolve", { token: reg.accessToken, organizationId: reg.organization.id });
	}, 90_000);

	afterAll(async () => {
		await caller?.stop().catch(() => undefined);
		await Promise.all(nodes.map(n => n.stop("SIGKILL")));
		await deleteRabbitObjects([NAMESPACE]).catch(() => undefined);
		const conn = await amqp.connect(AMQP_URL).catch(() => undefined);
		if (conn) {
			const ch = await conn.createChannel();
			for (const id of [CALLER_ID, ...nodes.map(n => n.nodeID)])
				for (const kind of ["REQ", "RES", "EVENT"])
					await ch.deleteQueue(`MOL-${NAMESPACE}.${kind}.${id}`).catch(() => undefined);
			await conn.close().catch(() => undefined);
		}
		await db?.drop();
	});

	test("an edit saved on one replica is found by a search on the other within 5 s", async () => {
		const cat: any = await caller.call("knowledge-categories.create", { name: "Ops" }, on(r1));
		const article: any = await caller.call(
			"knowledge-articles.create",
			{ category_id: cat.id, title: "Backups", body: "Nightly snapshots to cold storage.", status: "published" },
			on(r1)
		);
		const search = (node: NodeProcess, query: string) =>
			caller.call<any, any>("knowledge.search", { query }, on(node)).then(r => {
				expect(r.mode).toBe("hybrid");
				return r.results.filter((x: any) => x.scores.fulltext !== undefined).map((x: any) => x.id);
			});
		await waitUntil(
			"the published article searchable",
			() => search(r2, "snapshots"),
			ids => ids.length === 1
		);

		for (const [i, word] of ["quasar", "nebula", "pulsar"].entries()) {
			await caller.call(
				"knowledge-articles.update",
				{ id: article.id, body: `Nightly snapshots, verified by the ${word} job.` },
				on(i % 2 ? r2 : r1)
			);
			const reader = i % 2 ? r1 : r2;
			await waitUntil(
				`"${word}" searchable on ${reader.nodeID}`,
				() => search(reader, word),
				ids => ids[0] === article.id,
				5_000,
				50
			);
		}
		// The replaced words are gone from the full-text index; the embeddings hold the last revision's text.
		expect(await search(r1, "quasar")).toEqual([]);
		const collection: any = await caller.call(
			"embeddings-collections.ensure",
			{ name: "knowledge" },
			{ ...as(owner) }
		);
		// The chunks and embeddings follow the commit of the full-text index, within the same 5 s.
		await waitUntil(
			"the last revision's text in the knowledge collection",
			async () => {
				const docs: any = await caller.call(
					"embeddings-documents.list",
					{ collectionId: collection.id },
					as(owner)
				);
				if (docs.rows.length !== 1) return `${docs.rows.length} documents`;
				return JSON.stringify(
					await caller.call("embeddings-documents.get", { id: docs.rows[0].id }, as(owner))
				);
			},
			text => text.includes("pulsar"),
			5_000,
			50
		);
	});
});
