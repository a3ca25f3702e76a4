// embeddings-jobs: ingest and re-embed jobs (mixins/jobs.mixin.ts runs them on whichever replica claims them), read
// and cancelled by clients. A job acts as this service for its organization (no user is there when it runs).
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb, type Queryable } from "../../lib/db";
import { moduleSettings } from "../../lib/config";
import { notFound } from "../../lib/errors";
import { pageOf } from "../../lib/response";
import { EventsMixin } from "../../mixins/events.mixin";
import { ServiceIdentityMixin } from "../../mixins/service-identity.mixin";
import { HousekeepingMixin } from "../../mixins/housekeeping.mixin";
import { JobsMixin, JobStopped, type JobRow, type JobRun, type JobsService } from "../../mixins/jobs.mixin";
import embeddingsModule from "./embeddings.module";
import {
	modelOf,
	nextToReembed,
	orgOf,
	paged,
	pageParams,
	upsertDocuments,
	writeReembedded,
	type Writer
} from "./ingest";
import type { CollectionRow, DocumentInput } from "./store";
import { EMBEDDING_JOBS_LIVE, jobResponse, jobView } from "./embeddings.responses";
import "./embeddings.events";

type Self = JobsService & Writer;

const STEP_DOCUMENTS = 20;

async function collectionRow(db: Queryable, id: string): Promise<CollectionRow | undefined> {
	return (await db.query<CollectionRow>("SELECT * FROM emb_collections WHERE id = $1", [id])).rows[0];
}

// Documents in steps of STEP_DOCUMENTS from the cursor (job.done), read from emb_job_documents. Each step writes its
// documents, deletes them from the staging table and records the progress in one transaction that holds only while
// the job is not cancelled: once a cancel has answered, nothing more of the job lands. A step redone after a crash
// finds its documents stored with the same hash and embeds nothing again.
async function ingest(this: Self, run: JobRun) {
	const db = await getDb();
	const job = run.job;
	while (job.done < job.total) {
		if (run.signal.aborted) throw new JobStopped("stopped");
		const { rows } = await db.query<{ position: number; document: DocumentInput }>(
			`SELECT position, document FROM emb_job_documents WHERE job_id = $1 AND position >= $2
			ORDER BY position LIMIT $3`,
			[job.id, job.done, STEP_DOCUMENTS]
		);
		if (!rows.length) throw new Error(`the job's documents from ${job.done} on are missing`);
		const to = rows[rows.length - 1].position + 1;
		await upsertDocuments(
			this,
			job.collection_id as string,
			job.organization_id,
			rows.map(r => r.document),
			work =>
				run.step(
					async (tx, publish) => {
						const out = await work(tx, publish);
						await tx.query("DELETE FROM emb_job_documents WHERE job_id = $1 AND position < $2", [
							job.id,
							to
						]);
						return out;
					},
					() => ({ done: to })
				)
		);
	}
	await analyzeChunks();
}

// The planner chooses between a model's HNSW index and an exact scan of the collection by its row estimates: after
// many rows changed they must be fresh, or a large collection is scanned exactly. PostgreSQL's autovacuum also does
// this; embedded PGlite has none (the housekeeping timer below).
async function analyzeChunks() {
	await (await getDb()).query("ANALYZE emb_chunks");
}

// New-model chunks for every document, then, once none lacks them, the switch in one transaction; the old model's
// chunks are deleted afterwards. Searches use the old model until the switch commits and the new one after.
async function reembed(this: Self, run: JobRun) {
	const db = await getDb();
	const collection = await collectionRow(db, run.job.collection_id as string);
	if (!collection) return;
	const model = await modelOf(db, run.job.payload.modelId);
	const oldModel = run.job.cursor?.oldModelId ?? collection.model_id;
	if (!run.job.cursor?.switched) {
		if (!run.job.total) {
			const n = (
				await db.query("SELECT count(*)::int AS n FROM emb_documents WHERE collection_id = $1", [collection.id])
			).rows[0].n;
			await run.step(
				async () => undefined,
				() => ({ done: 0, total: n, cursor: { after: null, oldModelId: oldModel } })
			);
		}
		for (;;) {
			if (run.signal.aborted) throw new JobStopped("stopped");
			const after = run.job.cursor?.after ?? null;
			const next = await nextToReembed(this, collection, model, after, STEP_DOCUMENTS);
			if (next.ids.length) {
				await run.step(
					(tx, publish) => writeReembedded(tx, publish, collection, model, next.ids, next.prepared),
					() => ({
						done: Math.min(run.job.done + next.ids.length, run.job.total),
						cursor: { after: next.ids[next.ids.length - 1], oldModelId: oldModel }
					})
				);
				continue;
			}
			const switched = await run.step(
				async tx => {
					await tx.query("SELECT 1 FROM emb_collections WHERE id = $1 FOR UPDATE", [collection.id]);
					// Documents written meanwhile by upserts got both models' chunks; anything still missing (a document
					// changed between embedding and writing) means another pass from the start.
					const missing = await tx.query(
						`SELECT 1 FROM emb_documents d WHERE d.collection_id = $1 AND NOT EXISTS (SELECT 1 FROM emb_chunks c
						WHERE c.document_id = d.id AND c.model_id = $2 AND c.content_hash = d.content_hash) LIMIT 1`,
						[collection.id, model.id]
					);
					if (missing.rowCount) return false;
					await tx.query(
						`UPDATE emb_collections SET model_id = pending_model_id, pending_model_id = NULL, reembed_job_id = NULL,
						updated_at = now() WHERE id = $1 AND reembed_job_id = $2`,
						[collection.id, run.job.id]
					);
					return true;
				},
				ok => ({
					done: ok ? run.job.total : run.job.done,
					cursor: { after: null, oldModelId: oldModel, switched: ok }
				})
			);
			if (switched) break;
		}
	}
	// A search that read the collection's model just before the switch may still be reading the old chunks: they
	// stay a grace period, then go in slices so no transaction holds many rows.
	await new Promise(r => setTimeout(r, moduleSettings(embeddingsModule).reembedGraceMs));
	for (;;) {
		const { rowCount } = await db.query(
			`DELETE FROM emb_chunks WHERE id IN (SELECT id FROM emb_chunks WHERE collection_id = $1 AND model_id = $2
			LIMIT 5000)`,
			[collection.id, oldModel]
		);
		if (!rowCount) break;
	}
	await analyzeChunks();
}

// An ingest that fails or is cancelled drops what it had left to do; a re-embed leaves the collection on its model,
// without the new model's chunks.
async function ended(tx: Queryable, job: JobRow) {
	if (job.kind === "ingest") await tx.query("DELETE FROM emb_job_documents WHERE job_id = $1", [job.id]);
	if (job.kind !== "reembed" || !job.collection_id) return;
	const { rowCount } = await tx.query(
		`UPDATE emb_collections SET pending_model_id = NULL, reembed_job_id = NULL, updated_at = now()
		WHERE id = $1 AND reembed_job_id = $2`,
		[job.collection_id, job.id]
	);
	if (rowCount)
		await tx.query("DELETE FROM emb_chunks WHERE collection_id = $1 AND model_id = $2", [
			job.collection_id,
			job.payload.modelId
		]);
}

const COLUMNS = `id, organization_id, collection_id, kind, status, done, total, error, created_at, started_at,
	finished_at`;

const EmbeddingsJobsService: ServiceSchema = {
	name: "embeddings-jobs",
	mixins: [
		EventsMixin,
		ServiceIdentityMixin,
		HousekeepingMixin("refreshChunkStatistics", 10 * 60_000, "refresh emb_chunks' planner statistics"),
		JobsMixin<Self>({
			table: "emb_jobs",
			handlers: { ingest, reembed },
			ended,
			settings: () => {
				const s = moduleSettings(embeddingsModule);
				return { perOrganization: s.jobsPerOrganization, leaseMs: s.jobLeaseMs, pollMs: s.jobPollMs };
			},
			eventPrefix: "embedding.job",
			eventData: job => ({ collectionId: job.collection_id ?? null }),
			live: EMBEDDING_JOBS_LIVE
		})
	],
	settings: { rest: "/embeddings/jobs" },
	methods: {
		async refreshChunkStatistics() {
			if ((await getDb()).kind === "pglite") await analyzeChunks();
		}
	},
	actions: {
		list: {
			rest: "GET /",
			permission: "embeddings:read",
			params: {
				collectionId: { type: "uuid", optional: true, label: "Collection" },
				status: {
					type: "enum",
					values: ["queued", "running", "completed", "failed", "cancelled"],
					optional: true,
					label: "Status"
				},
				...pageParams
			},
			response: pageOf(jobResponse),
			async handler(ctx: Context<{ collectionId?: string; status?: string; page?: number; pageSize?: number }>) {
				const from = `FROM emb_jobs WHERE organization_id = $1 AND ($2::uuid IS NULL OR collection_id = $2)
					AND ($3::text IS NULL OR status = $3)`;
				const q = { select: `SELECT ${COLUMNS}`, from, order: "created_at DESC, id" };
				const params = [orgOf(ctx), ctx.params.collectionId ?? null, ctx.params.status ?? null];
				const page = await paged<JobRow>(await getDb(), q, params, ctx.params);
				return { ...page, rows: page.rows.map(jobView) };
			}
		},
		get: {
			rest: "GET /:id",
			permission: "embeddings:read",
			params: { id: { type: "uuid", label: "Job" } },
			response: jobResponse,
			async handler(ctx: Context<{ id: string }>) {
				const { rows } = await (
					await getDb()
				).query<JobRow>(`SELECT ${COLUMNS} FROM emb_jobs WHERE id = $1::text::uuid AND organization_id = $2`, [
					ctx.params.id,
					orgOf(ctx)
				]);
				if (!rows[0]) throw notFound("job", "id");
				return jobView(rows[0]);
			}
		},
		cancel: {
			rest: "POST /:id/cancel",
			permission: "embeddings:write",
			params: { id: { type: "uuid", label: "Job" } },
			response: jobResponse,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const job = await this.cancelJob(orgOf(ctx), ctx.params.id);
				if (!job) throw notFound("job", "id");
				return jobView(job);
			}
		}
	}
};
export default EmbeddingsJobsService;
