// embeddings-collections: collections of documents bound to one model. A re-embed fills a pending model's chunks by
// a job while the collection keeps serving its current model; the job switches them in one transaction at the end.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb, type Queryable } from "../../lib/db";
import { authOf } from "../../lib/authz";
import { conflict, fromDbError, invalid, notFound } from "../../lib/errors";
import { announceChange } from "../../lib/live";
import { pageOf } from "../../lib/response";
import { EventsMixin } from "../../mixins/events.mixin";
import { insertJob, kickJobs } from "../../mixins/jobs.mixin";
import { collectionOf, orgOf, paged, pageParams } from "./ingest";
import { BUILTIN_MODEL_ID } from "./store";
import { EMBEDDING_JOBS_LIVE, collectionRow, jobResponse, jobView } from "./embeddings.responses";
import "./embeddings.events";

const COLUMNS = `SELECT c.id, c.name, c.description, c.model_id AS "modelId", m.name AS "modelName", m.dimensions,
	(SELECT count(*)::int FROM emb_documents d WHERE d.collection_id = c.id) AS "documentCount",
	(SELECT count(*)::int FROM emb_chunks k WHERE k.collection_id = c.id AND k.model_id = c.model_id) AS "chunkCount",
	CASE WHEN c.pending_model_id IS NULL THEN 'ready' ELSE 'reembedding' END AS status,
	c.pending_model_id AS "pendingModelId", c.reembed_job_id AS "reembedJobId",
	c.created_at AS "createdAt", c.updated_at AS "updatedAt"`;
const FROM = "FROM emb_collections c JOIN emb_models m ON m.id = c.model_id";
const SELECT = `${COLUMNS} ${FROM}`;

async function view(db: Queryable, org: string, id: string) {
	const { rows } = await db.query(`${SELECT} WHERE c.id = $1::text::uuid AND c.organization_id = $2`, [id, org]);
	if (!rows[0]) throw notFound("collection", "id");
	return rows[0];
}

// A model the organization may use: the built-in one or its own.
async function checkModel(db: Queryable, org: string, modelId: string) {
	const { rows } = await db.query(
		"SELECT id FROM emb_models WHERE id = $1::text::uuid AND (organization_id IS NULL OR organization_id = $2)",
		[modelId, org]
	);
	if (!rows[0]) throw invalid("modelId", "no such model in this organization");
}

const writeError = (e: any) => {
	if (e?.code === "23505") throw conflict("a collection with this name already exists", "name");
	throw fromDbError(e, "collection");
};

const announce = (ctx: Context, row: { id: string; name: string }, action: "created" | "updated" | "removed") =>
	announceChange(ctx.broker, ctx, {
		entity: "embeddings-collections",
		noun: "collection",
		id: row.id,
		action,
		label: row.name,
		permission: "embeddings:read"
	});

const idParam = { id: { type: "uuid", label: "Collection" } };
const name = { type: "string", min: 1, max: 200, trim: true, label: "Name" };
const description = { type: "string", max: 2000, optional: true, label: "Description" };

const EmbeddingsCollectionsService: ServiceSchema = {
	name: "embeddings-collections",
	mixins: [EventsMixin],
	settings: { rest: "/embeddings/collections" },
	actions: {
		list: {
			rest: "GET /",
			permission: "embeddings:read",
			params: pageParams,
			response: pageOf(collectionRow),
			async handler(ctx: Context<{ page?: number; pageSize?: number }>) {
				const q = { select: COLUMNS, from: `${FROM} WHERE c.organization_id = $1`, order: "c.name" };
				return paged(await getDb(), q, [orgOf(ctx)], ctx.params);
			}
		},
		get: {
			rest: "GET /:id",
			permission: "embeddings:read",
			params: idParam,
			response: collectionRow,
			async handler(ctx: Context<{ id: string }>) {
				return view(await getDb(), orgOf(ctx), ctx.params.id);
			}
		},
		create: {
			rest: "POST /",
			permission: "embeddings:manage",
			params: {
				$$strict: true,
				name,
				description,
				modelId: { type: "uuid", optional: true, label: "Model" }
			},
			response: collectionRow,
			async handler(ctx: Context<{ name: string; description?: string; modelId?: string }>) {
				const org = orgOf(ctx);
				const db = await getDb();
				const modelId = ctx.params.modelId ?? BUILTIN_MODEL_ID;
				await checkModel(db, org, modelId);
				const { rows } = await db
					.query(
						`INSERT INTO emb_collections (organization_id, name, description, model_id) VALUES ($1, $2, $3, $4)
						RETURNING id, name`,
						[org, ctx.params.name, ctx.params.description ?? "", modelId]
					)
					.catch(writeError);
				announce(ctx, rows[0], "created");
				return view(db, org, rows[0].id);
			}
		},
		// For other modules: the organization's collection of this name on the local-hash model, made if missing.
		// It may create a collection, so it takes what creating one takes.
		ensure: {
			permission: "embeddings:write",
			params: { $$strict: "remove", name, description },
			response: collectionRow,
			async handler(ctx: Context<{ name: string; description?: string }>) {
				const org = orgOf(ctx);
				const db = await getDb();
				// Concurrent callers: one insert wins, the others find its row.
				await db.query(
					`INSERT INTO emb_collections (organization_id, name, description, model_id) VALUES ($1, $2, $3, $4)
					ON CONFLICT (organization_id, name) DO NOTHING`,
					[org, ctx.params.name, ctx.params.description ?? "", BUILTIN_MODEL_ID]
				);
				const { rows } = await db.query(`${SELECT} WHERE c.organization_id = $1 AND c.name = $2`, [
					org,
					ctx.params.name
				]);
				return rows[0];
			}
		},
		update: {
			rest: "PATCH /:id",
			permission: "embeddings:manage",
			params: { $$strict: true, ...idParam, name: { ...name, optional: true }, description },
			response: collectionRow,
			async handler(ctx: Context<{ id: string; name?: string; description?: string }>) {
				const org = orgOf(ctx);
				const db = await getDb();
				const c = await collectionOf(db, org, ctx.params.id);
				await db
					.query(
						`UPDATE emb_collections SET name = coalesce($3, name), description = coalesce($4, description),
						updated_at = now() WHERE id = $1 AND organization_id = $2`,
						[c.id, org, ctx.params.name ?? null, ctx.params.description ?? null]
					)
					.catch(writeError);
				const row = await view(db, org, c.id);
				announce(ctx, row, "updated");
				return row;
			}
		},
		remove: {
			rest: "DELETE /:id",
			permission: "embeddings:manage",
			params: idParam,
			response: collectionRow,
			async handler(ctx: Context<{ id: string }>) {
				const org = orgOf(ctx);
				const db = await getDb();
				const row = await view(db, org, ctx.params.id);
				// Its documents, chunks and jobs go with it (ON DELETE CASCADE); a running job stops at its next step.
				await db.query("DELETE FROM emb_collections WHERE id = $1 AND organization_id = $2", [row.id, org]);
				announce(ctx, row, "removed");
				return row;
			}
		},
		reembed: {
			rest: "POST /:id/reembed",
			permission: "embeddings:manage",
			params: { $$strict: true, ...idParam, modelId: { type: "uuid", label: "Model" } },
			response: jobResponse,
			async handler(
				this: { withEvents: any; broker: Context["broker"] },
				ctx: Context<{ id: string; modelId: string }>
			) {
				const org = orgOf(ctx);
				const db = await getDb();
				await checkModel(db, org, ctx.params.modelId);
				const job = await this.withEvents(async (tx: Queryable) => {
					const c = (
						await tx.query(
							"SELECT * FROM emb_collections WHERE id = $1 AND organization_id = $2 FOR UPDATE",
							[ctx.params.id, org]
						)
					).rows[0];
					if (!c) throw notFound("collection", "id");
					if (c.pending_model_id) throw conflict("the collection is being re-embedded already");
					if (c.model_id === ctx.params.modelId)
						throw invalid("modelId", "is the collection's model already");
					const row = await insertJob(tx, "emb_jobs", {
						organizationId: org,
						kind: "reembed",
						payload: { modelId: ctx.params.modelId },
						total: 0,
						columns: { collection_id: c.id, created_by: authOf(ctx)?.userId ?? null }
					});
					await tx.query(
						"UPDATE emb_collections SET pending_model_id = $2, reembed_job_id = $3, updated_at = now() WHERE id = $1",
						[c.id, ctx.params.modelId, row.id]
					);
					return row;
				});
				kickJobs(this.broker, "emb_jobs", { job, live: EMBEDDING_JOBS_LIVE });
				return jobView(job);
			}
		}
	}
};
export default EmbeddingsCollectionsService;
