// embeddings-documents: a collection's documents as clients read them (with their chunks), and removal of one.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb } from "../../lib/db";
import { notFound } from "../../lib/errors";
import { pageOf } from "../../lib/response";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import type { Queryable } from "../../lib/db";
import { collectionOf, orgOf, paged, pageParams } from "./ingest";
import { documentRow } from "./embeddings.responses";
import { extend, listOf } from "../../lib/response";
import "./embeddings.events";

const COLUMNS = `SELECT d.id, d.collection_id AS "collectionId", d.source_id AS "sourceId", d.title, d.kind, d.language,
	d.path, d.metadata, d.content_hash AS "contentHash",
	(SELECT count(*)::int FROM emb_chunks k JOIN emb_collections c ON c.id = d.collection_id
		WHERE k.document_id = d.id AND k.model_id = c.model_id) AS "chunkCount",
	d.created_at AS "createdAt", d.updated_at AS "updatedAt"`;
const SELECT = `${COLUMNS} FROM emb_documents d`;

const detail = extend(documentRow, {
	text: "string",
	chunks: listOf({
		type: "object",
		props: {
			index: "number|integer",
			text: "string",
			tokens: "number|integer",
			heading: { type: "string", nullable: true },
			symbol: { type: "string", nullable: true }
		}
	})
});

const EmbeddingsDocumentsService: ServiceSchema = {
	name: "embeddings-documents",
	mixins: [EventsMixin],
	settings: { rest: "/embeddings/documents" },
	actions: {
		list: {
			rest: "GET /",
			permission: "embeddings:read",
			params: {
				collectionId: { type: "uuid", label: "Collection" },
				search: { type: "string", max: 200, optional: true, label: "Search" },
				...pageParams
			},
			response: pageOf(documentRow),
			async handler(ctx: Context<{ collectionId: string; search?: string; page?: number; pageSize?: number }>) {
				const org = orgOf(ctx);
				const db = await getDb();
				const c = await collectionOf(db, org, ctx.params.collectionId);
				const from = `FROM emb_documents d WHERE d.collection_id = $1 AND ($2::text IS NULL
					OR d.source_id ILIKE '%' || $2 || '%' OR d.title ILIKE '%' || $2 || '%')`;
				const q = { select: COLUMNS, from, order: "d.source_id" };
				return paged(db, q, [c.id, ctx.params.search ?? null], ctx.params);
			}
		},
		get: {
			rest: "GET /:id",
			permission: "embeddings:read",
			params: { id: { type: "uuid", label: "Document" } },
			response: detail,
			async handler(ctx: Context<{ id: string }>) {
				const db = await getDb();
				const { rows } = await db.query(`${SELECT} WHERE d.id = $1::text::uuid AND d.organization_id = $2`, [
					ctx.params.id,
					orgOf(ctx)
				]);
				if (!rows[0]) throw notFound("document", "id");
				const text = (await db.query("SELECT text FROM emb_documents WHERE id = $1", [rows[0].id])).rows[0]
					.text;
				const chunks = await db.query(
					`SELECT k.index, k.text, k.tokens, k.heading, k.symbol FROM emb_chunks k
					JOIN emb_collections c ON c.id = k.collection_id AND c.model_id = k.model_id
					WHERE k.document_id = $1 ORDER BY k.index`,
					[rows[0].id]
				);
				return { ...rows[0], text, chunks: chunks.rows };
			}
		},
		remove: {
			rest: "DELETE /:id",
			permission: "embeddings:write",
			params: { id: { type: "uuid", label: "Document" } },
			response: documentRow,
			async handler(this: { withEvents: any }, ctx: Context<{ id: string }>) {
				const org = orgOf(ctx);
				const db = await getDb();
				const { rows } = await db.query(`${SELECT} WHERE d.id = $1::text::uuid AND d.organization_id = $2`, [
					ctx.params.id,
					org
				]);
				if (!rows[0]) throw notFound("document", "id");
				const d = rows[0];
				await this.withEvents(async (tx: Queryable, publish: Publish) => {
					await tx.query("DELETE FROM emb_documents WHERE id = $1", [d.id]);
					publish("embedding.document.deleted", {
						organizationId: org,
						collectionId: d.collectionId,
						documentId: d.id,
						sourceId: d.sourceId
					});
				});
				return d;
			}
		}
	}
};
export default EmbeddingsDocumentsService;
