// Embeddings: documents upserted into a collection by source id (unchanged content is not re-embedded), ingest jobs
// for large sets, removal by source id, and vector / full-text / hybrid search with metadata filters and an optional
// rerank through an AI deployment. Model calls (ai.embed, ai.complete) act as this service for the organization.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { authOf } from "../../lib/authz";
import { getDb, type Queryable } from "../../lib/db";
import { moduleSettings } from "../../lib/config";
import { forbidden, invalid } from "../../lib/errors";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import { ServiceIdentityMixin } from "../../mixins/service-identity.mixin";
import { insertJob, kickJobs } from "../../mixins/jobs.mixin";
import embeddingsModule from "./embeddings.module";
import { aiCaller, collectionOf, modelOf, stageDocuments, upsertDocuments, type Writer } from "./ingest";
import { embedTexts, type DocumentInput } from "./store";
import { fulltextSearch, fuse, toHit, vectorSearch, type Filter, type Hit } from "./search";
import { rerank } from "./rerank";
import {
	EMBEDDING_JOBS_LIVE,
	documentRule,
	jobView,
	searchResponse,
	upsertResponse,
	jobResponse
} from "./embeddings.responses";
import "./embeddings.events";

interface Self extends Writer {
	broker: Context["broker"];
	orgOf(ctx: Context): string;
}

type UpsertParams = { id: string; documents: DocumentInput[] };
type SearchParams = {
	id: string;
	query: string;
	k?: number;
	mode?: "vector" | "fulltext" | "hybrid";
	weights?: { vector?: number; fulltext?: number };
	filter?: Filter;
	rerank?: { deployment: string };
};

const documents = (max: number) => ({
	type: "array",
	items: documentRule,
	min: 1,
	max,
	label: "Documents",
	messages: { sourceTwice: "The source id {actual} appears twice in documents" },
	custom(value: DocumentInput[], errors: { type: string; actual: unknown }[]) {
		const seen = new Set<string>();
		for (const d of value) {
			if (seen.has(d.sourceId)) errors.push({ type: "sourceTwice", actual: d.sourceId });
			seen.add(d.sourceId);
		}
		return value;
	}
});

const EmbeddingsService: ServiceSchema = {
	name: "embeddings",
	mixins: [EventsMixin, ServiceIdentityMixin],
	settings: { rest: "/embeddings" },

	actions: {
		upsert: {
			rest: "POST /collections/:id/documents",
			permission: "embeddings:write",
			external: true,
			params: { $$strict: "remove", id: { type: "uuid", label: "Collection" }, documents: documents(100) },
			response: upsertResponse,
			async handler(this: Self, ctx: Context<UpsertParams>) {
				return upsertDocuments(this, ctx.params.id, this.orgOf(ctx), ctx.params.documents);
			}
		},

		ingest: {
			rest: "POST /collections/:id/ingest",
			permission: "embeddings:write",
			params: { $$strict: "remove", id: { type: "uuid", label: "Collection" }, documents: documents(10_000) },
			response: jobResponse,
			async handler(this: Self, ctx: Context<UpsertParams>) {
				const organizationId = this.orgOf(ctx);
				const collection = await collectionOf(await getDb(), organizationId, ctx.params.id);
				const job = await this.withEvents(async tx => {
					const row = await insertJob(tx, "emb_jobs", {
						organizationId,
						kind: "ingest",
						payload: {},
						total: ctx.params.documents.length,
						columns: { collection_id: collection.id, created_by: authOf(ctx)?.userId ?? null }
					});
					await stageDocuments(tx, row.id, ctx.params.documents);
					return row;
				});
				kickJobs(this.broker, "emb_jobs", { job, live: EMBEDDING_JOBS_LIVE });
				return jobView(job);
			}
		},

		// For other modules (the knowledge base unpublishing an article).
		remove: {
			permission: "embeddings:write",
			params: {
				$$strict: "remove",
				collectionId: { type: "uuid", label: "Collection" },
				sourceIds: { type: "array", items: { type: "string", min: 1, max: 500 }, min: 1, max: 1000 }
			},
			response: { type: "object", props: { removed: "number|integer" } },
			async handler(this: Self, ctx: Context<{ collectionId: string; sourceIds: string[] }>) {
				const organizationId = this.orgOf(ctx);
				await collectionOf(await getDb(), organizationId, ctx.params.collectionId);
				return this.withEvents(async (tx: Queryable, publish: Publish) => {
					const { rows } = await tx.query<{ id: string; source_id: string }>(
						`DELETE FROM emb_documents WHERE collection_id = $1 AND organization_id = $2 AND source_id = ANY($3)
						RETURNING id, source_id`,
						[ctx.params.collectionId, organizationId, ctx.params.sourceIds]
					);
					for (const r of rows)
						publish("embedding.document.deleted", {
							organizationId,
							collectionId: ctx.params.collectionId,
							documentId: r.id,
							sourceId: r.source_id
						});
					return { removed: rows.length };
				});
			}
		},

		search: {
			rest: "POST /collections/:id/search",
			permission: "embeddings:read",
			external: true,
			params: {
				$$strict: "remove",
				id: { type: "uuid", label: "Collection" },
				query: { type: "string", min: 1, max: 10_000, trim: true, label: "Query" },
				k: { type: "number", integer: true, min: 1, max: 100, optional: true, convert: true, label: "Results" },
				mode: { type: "enum", values: ["vector", "fulltext", "hybrid"], optional: true, label: "Mode" },
				weights: {
					type: "object",
					optional: true,
					strict: "remove",
					props: {
						vector: { type: "number", min: 0, max: 100, optional: true, label: "Vector weight" },
						fulltext: { type: "number", min: 0, max: 100, optional: true, label: "Full-text weight" }
					}
				},
				filter: { type: "object", optional: true, label: "Filter" },
				rerank: {
					type: "object",
					optional: true,
					strict: "remove",
					props: { deployment: { type: "string", min: 1, max: 200, label: "Rerank deployment" } }
				}
			},
			response: searchResponse,
			async handler(this: Self, ctx: Context<SearchParams>) {
				const started = Date.now();
				const p = ctx.params;
				const organizationId = this.orgOf(ctx);
				const db = await getDb();
				const collection = await collectionOf(db, organizationId, p.id);
				const model = await modelOf(db, collection.model_id);
				const k = p.k ?? 10;
				const mode = p.mode ?? "hybrid";
				const wv = p.weights?.vector ?? 1;
				const wf = p.weights?.fulltext ?? 1;
				if (mode === "hybrid" && wv + wf === 0) throw invalid("weights", "must not both be 0");
				// Reranking and fusion pick from more candidates than they return.
				const pool = p.rerank || mode === "hybrid" ? Math.min(Math.max(k * 4, 40), 200) : k;
				const s = { collectionId: collection.id, modelId: model.id, k: pool, filter: p.filter };
				const settings = moduleSettings(embeddingsModule);
				const call = aiCaller(this, organizationId);
				const [vrows, frows] = await Promise.all([
					mode === "fulltext"
						? []
						: embedTexts(model, [p.query], 1, call).then(([vector]) =>
								vectorSearch(
									db,
									{ ...s, dimensions: model.dimensions, vector },
									{ efSearch: settings.hnswEfSearch, exactBelow: settings.exactSearchBelow }
								)
							),
					mode === "vector" ? [] : fulltextSearch(db, { ...s, query: p.query }, settings.fulltextCandidates)
				]);
				let hits: Omit<Hit, "rank">[] =
					mode === "vector"
						? vrows.map(r => toHit(r, r.value, { vector: r.value }))
						: mode === "fulltext"
							? frows.map(r => toHit(r, r.value, { fulltext: r.value }))
							: fuse(
									[
										{ rows: vrows, weight: wv, key: "vector" },
										{ rows: frows, weight: wf, key: "fulltext" }
									],
									pool
								);
				if (p.rerank) hits = await rerank(call, p.rerank.deployment, p.query, hits);
				const results = hits.slice(0, k).map((h, i) => ({ ...h, rank: i + 1 }));
				return { results, mode, tookMs: Date.now() - started };
			}
		}
	},

	methods: {
		orgOf(ctx: Context): string {
			const org = authOf(ctx)?.organizationId;
			if (!org) throw forbidden("no organization selected");
			return org;
		}
	}
};
export default EmbeddingsService;
