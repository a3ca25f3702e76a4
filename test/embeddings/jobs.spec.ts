// Embedding jobs on an in-process broker and real PostgreSQL: ingest with progress (events and live notices),
// cancel, the per-organization limit, and re-embedding a collection with a new model while it is searched.
import type { ServiceBroker } from "moleculer";
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, DATABASE_ENGINE, DATABASE_SERVICES, createTestDatabase } from "../helpers/infra";
import { waitUntil } from "../helpers/wait";
import { getDb } from "../../lib/db";
import type { ChangeNotice } from "../../lib/live";
import type { AuthInfo } from "../../lib/permissions";
import type { JobsService } from "../../mixins/jobs.mixin";
import { EMBEDDINGS_SERVICES, registerOrg } from "./helpers";

jest.setTimeout(120_000);

const docs = (n: number, prefix = "d") =>
	Array.from({ length: n }, (_, i) => ({
		sourceId: `${prefix}${i}`,
		text: `document ${i} about ${["rivers", "mountains", "forests", "deserts"][i % 4]} and number ${i}`,
		metadata: { n: i }
	}));

const rows = async (sql: string, params: unknown[] = []) => (await (await getDb()).query(sql, params)).rows;

describeWith(DATABASE_SERVICES)(`embedding jobs (in-process broker, ${DATABASE_ENGINE})`, () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let owner: AuthInfo, other: AuthInfo;
	const notices: ChangeNotice[] = [];
	const call = (action: string, params: object, auth: AuthInfo = owner) =>
		t.broker.call<any, any>(action, params, as(auth));
	const finished = (id: string, auth = owner) =>
		waitUntil(
			`job ${id} finished`,
			() => call("embeddings-jobs.get", { id }, auth),
			j => !["queued", "running"].includes(j.status),
			60_000
		);

	// No job runs on this broker any more.
	const idle = () =>
		waitUntil(
			"no job running",
			async () => (t.broker.getLocalService("embeddings-jobs") as unknown as JobsService).jobsRunning.size,
			n => n === 0
		);

	beforeAll(async () => {
		db = await createTestDatabase();
		t = await createTestBroker(
			{
				...db.env,
				EMBEDDINGS_JOB_POLL_MS: "100",
				EMBEDDINGS_JOBS_PER_ORGANIZATION: "1",
				EMBEDDINGS_REEMBED_GRACE_MS: "300"
			},
			EMBEDDINGS_SERVICES
		);
		const spy = (broker: ServiceBroker) =>
			broker.createService({
				name: "spy",
				events: {
					"gateway.changed"(ctx: { params: ChangeNotice }) {
						notices.push(ctx.params);
					}
				}
			});
		spy(t.broker);
		owner = (await registerOrg(t.broker, "jobs-a@example.com"))("owner");
		other = (await registerOrg(t.broker, "jobs-b@example.com"))("owner");
	});

	afterAll(async () => {
		await t?.stop();
		await db?.drop();
	});

	test("an ingest job stores every document and reports progress as events and live notices", async () => {
		const c = await call("embeddings-collections.create", { name: "ingest" });
		const job = await call("embeddings.ingest", { id: c.id, documents: docs(300) });
		expect(job).toMatchObject({ kind: "ingest", status: "queued", total: 300, done: 0, collectionId: c.id });
		expect(await finished(job.id)).toMatchObject({ status: "completed", done: 300, total: 300 });
		expect((await call("embeddings-collections.get", { id: c.id })).documentCount).toBe(300);
		const types = (
			await rows(
				"SELECT payload->>'type' AS type, payload FROM outbox WHERE channel = 'embedding.events' AND payload->>'jobId' = $1 ORDER BY created_at",
				[job.id]
			)
		).map(r => r.type);
		expect(types[0]).toBe("embedding.job.started");
		expect(types).toContain("embedding.job.progress");
		expect(types.at(-1)).toBe("embedding.job.completed");
		const progress = notices.filter(n => n.entity === "embeddings-jobs" && n.id === job.id);
		expect(progress.at(-1)).toMatchObject({
			organizationId: owner.organizationId,
			progress: { done: 300, total: 300 }
		});
		expect(progress.every(n => n.permission === "embeddings:read")).toBe(true);

		// Ingesting the same documents again stores nothing new.
		const again = await call("embeddings.ingest", { id: c.id, documents: docs(300) });
		expect(await finished(again.id)).toMatchObject({ status: "completed", done: 300 });
		const [{ n }] = await rows("SELECT count(*)::int AS n FROM emb_chunks WHERE collection_id = $1", [c.id]);
		expect(n).toBe(300);
		// The staged documents went step by step with the progress.
		expect(await rows("SELECT 1 FROM emb_job_documents WHERE job_id = $1", [again.id])).toHaveLength(0);
	});

	test("a cancelled job stops and stays cancelled; another organization cannot see or cancel it", async () => {
		const c = await call("embeddings-collections.create", { name: "cancel" });
		const job = await call("embeddings.ingest", { id: c.id, documents: docs(3000) });
		await expect(call("embeddings-jobs.cancel", { id: job.id }, other)).rejects.toMatchObject({ code: 404 });
		await waitUntil(
			"some progress",
			() => call("embeddings-jobs.get", { id: job.id }),
			j => j.done > 0
		);
		expect(await call("embeddings-jobs.cancel", { id: job.id })).toMatchObject({ status: "cancelled" });
		const [{ n: before }] = await rows("SELECT count(*)::int AS n FROM emb_documents WHERE collection_id = $1", [
			c.id
		]);
		// The runner notices at its next step and stops.
		await idle();
		const end = await call("embeddings-jobs.get", { id: job.id });
		expect(end).toMatchObject({ status: "cancelled" });
		expect(end.done).toBeLessThan(3000);
		const [{ n: after }] = await rows("SELECT count(*)::int AS n FROM emb_documents WHERE collection_id = $1", [
			c.id
		]);
		// Nothing lands after the cancel answered: each step checks the job in its own transaction, the job row locked.
		expect(after).toBe(before);
		expect(after).toBe(end.done);
		// What it had left to do is not kept: no staged document, and the job row holds no documents.
		expect(await rows("SELECT 1 FROM emb_job_documents WHERE job_id = $1", [job.id])).toHaveLength(0);
		const [{ payload }] = await rows("SELECT payload FROM emb_jobs WHERE id = $1", [job.id]);
		expect(payload).toEqual({});
	});

	test("one organization's jobs run one at a time (EMBEDDINGS_JOBS_PER_ORGANIZATION=1)", async () => {
		const c = await call("embeddings-collections.create", { name: "limit" });
		const jobs = [];
		for (let i = 0; i < 3; i++)
			jobs.push(await call("embeddings.ingest", { id: c.id, documents: docs(60, `j${i}-`) }));
		for (const j of jobs) expect(await finished(j.id)).toMatchObject({ status: "completed" });
		const spans = (
			await rows("SELECT started_at, finished_at FROM emb_jobs WHERE id = ANY($1::uuid[]) ORDER BY started_at", [
				jobs.map(j => j.id)
			])
		).map(r => [new Date(r.started_at).getTime(), new Date(r.finished_at).getTime()]);
		for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
	});

	test("re-embedding with a new model serves every search meanwhile, then switches; upserts during it land in both", async () => {
		const c = await call("embeddings-collections.create", { name: "reembed" });
		for (let i = 0; i < 600; i += 100)
			await call("embeddings.upsert", { id: c.id, documents: docs(600).slice(i, i + 100) });
		const model = await call("embeddings-models.create", { name: "local-256", dimensions: 256 });
		expect(model).toMatchObject({ kind: "local", dimensions: 256, builtIn: false });

		let searching = true;
		let searches = 0;
		const errors: unknown[] = [];
		const short: number[] = [];
		const loop = (async () => {
			const modes = ["vector", "hybrid", "fulltext"];
			while (searching) {
				const mode = modes[searches % 3];
				try {
					const r = await call("embeddings.search", { id: c.id, query: "rivers", mode, k: 10 });
					if (r.results.length !== 10) short.push(r.results.length);
				} catch (err) {
					errors.push(err);
				}
				searches++;
			}
		})();

		try {
			const job = await call("embeddings-collections.reembed", { id: c.id, modelId: model.id });
			expect(job).toMatchObject({ kind: "reembed", status: "queued" });
			const during = await call("embeddings-collections.get", { id: c.id });
			expect(during).toMatchObject({ status: "reembedding", reembedJobId: job.id, pendingModelId: model.id });
			await expect(call("embeddings-collections.reembed", { id: c.id, modelId: model.id })).rejects.toMatchObject(
				{
					code: 409
				}
			);
			await call("embeddings.upsert", {
				id: c.id,
				documents: [{ sourceId: "late", text: "a late river document" }]
			});

			const end = await finished(job.id);
			expect(end).toMatchObject({ status: "completed" });
			expect(end.done).toBe(end.total);
		} finally {
			searching = false;
			await loop;
		}
		expect(errors).toEqual([]);
		expect(short).toEqual([]);
		expect(searches).toBeGreaterThan(10);

		const after = await call("embeddings-collections.get", { id: c.id });
		expect(after).toMatchObject({ status: "ready", modelId: model.id, dimensions: 256, chunkCount: 601 });
		const byModel = await rows(
			"SELECT model_id, count(*)::int AS n FROM emb_chunks WHERE collection_id = $1 GROUP BY model_id",
			[c.id]
		);
		expect(byModel).toEqual([{ model_id: model.id, n: 601 }]);
		const r = await call("embeddings.search", { id: c.id, query: "late river", mode: "vector", k: 1 });
		expect(r.results[0].sourceId).toBe("late");
	});

	test("a cancelled re-embed leaves the collection on its model without the new model's chunks", async () => {
		const c = await call("embeddings-collections.create", { name: "reembed-cancel" });
		await call("embeddings.upsert", { id: c.id, documents: docs(50) });
		const model = await call("embeddings-models.create", { name: "local-128", dimensions: 128 });
		const job = await call("embeddings-collections.reembed", { id: c.id, modelId: model.id });
		await call("embeddings-jobs.cancel", { id: job.id });
		await idle();
		expect(await call("embeddings-collections.get", { id: c.id })).toMatchObject({
			status: "ready",
			modelName: "local-hash",
			pendingModelId: null
		});
		const [{ n }] = await rows(
			"SELECT count(*)::int AS n FROM emb_chunks WHERE collection_id = $1 AND model_id = $2",
			[c.id, model.id]
		);
		expect(n).toBe(0);
		await expect(call("embeddings-models.remove", { id: model.id })).resolves.toMatchObject({ name: "local-128" });
	});
});
