// knowledge: search across the articles the caller may read, and the indexer. The indexer reads knowledge.events
// (its own channel): for each article event it indexes the article's current state in kb_search_index (or takes it
// out) and announces knowledge.search.indexed, in the event's transaction; after the commit the article's chunks and
// embeddings follow in the organization's "knowledge" collection of the embeddings module (embedding-sync.ts). Search fuses its full-text ranking with the embeddings' vector
// ranking (reciprocal rank fusion); both are limited to readable categories inside their queries.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb as db, type Queryable } from "../../lib/db";
import { makeEvent, writeManyToOutbox } from "../../lib/events/outbox";
import { EventsMixin, type AfterCommit } from "../../mixins/events.mixin";
import { ServiceIdentityMixin, type ServiceIdentity } from "../../mixins/service-identity.mixin";
import { categoriesFor, readerOf, type Reader } from "./access";
import { fullText, fuse, readableHits, type Hit } from "./search";
import { drainEmbeddings, queueEmbedding, type EmbeddingCalls } from "./embedding-sync";
import type { KnowledgeEvent } from "./knowledge.events";
import * as R from "./knowledge.responses";
import "./knowledge.events";

export const COLLECTION = "knowledge";
const SYNC_EVERY_MS = 5_000;

interface Self extends ServiceIdentity {
	collections: Map<string, string>;
	syncing?: Promise<void>;
	syncTimer?: NodeJS.Timeout;
	syncEmbeddings(): Promise<void>;
	collectionOf(organizationId: string): Promise<string>;
	vectorRanking(r: Reader, query: string, k: number, within: string | null): Promise<VectorHit[] | undefined>;
}

// An article found by the embeddings: its best chunk's similarity.
type VectorHit = { id: string; similarity: number };

type ArticleState = {
	id: string;
	organization_id: string;
	category_id: string;
	title: string;
	body: string;
	tags: string[];
	status: string;
	revision: number;
};

const KnowledgeService: ServiceSchema = {
	name: "knowledge",
	mixins: [EventsMixin, ServiceIdentityMixin],
	settings: { rest: "/knowledge" },

	actions: {
		// Ranked published articles for `query`, with highlighted snippets, from readable categories only (within
		// `categoryId` and its subcategories when given). For the UI, planning and the agents (MCP).
		search: {
			rest: "POST /search",
			permission: "knowledge:read",
			params: {
				$$strict: true,
				query: { type: "string", min: 1, max: 500, trim: true, label: "Query" },
				k: { type: "number", integer: true, min: 1, max: 50, default: 10, convert: true, label: "Results" },
				categoryId: { type: "uuid", optional: true, label: "Category" }
			},
			response: R.KbSearchResults,
			async handler(this: Self, ctx: Context<{ query: string; k: number; categoryId?: string }>) {
				const r = readerOf(ctx);
				const { query, k } = ctx.params;
				const within = ctx.params.categoryId ?? null;
				const q = await db();
				// A wider pool than k from each ranking, so fusion can promote what only one of them found.
				const pool = Math.min(3 * k, 100);
				const [text, vector] = await Promise.all([
					fullText(q, r, query, pool, within),
					this.vectorRanking(r, query, pool, within)
				]);
				if (!vector) return { results: rank(text.slice(0, k), h => ({ fulltext: h.score })), mode: "fulltext" };
				const scores = fuse([text.map(h => h.id), vector.map(v => v.id)]);
				const found = new Map(text.map(h => [h.id, h]));
				const missing = vector.map(v => v.id).filter(id => !found.has(id));
				for (const h of await readableHits(q, r, query, missing, within)) found.set(h.id, h);
				const textScore = new Map(text.map(h => [h.id, h.score]));
				const similarity = new Map(vector.map(v => [v.id, v.similarity]));
				const fused = [...found.values()]
					.map(h => ({ ...h, score: scores.get(h.id) ?? 0 }))
					.sort((a, b) => b.score - a.score || a.id.localeCompare(b.id))
					.slice(0, k);
				return {
					results: rank(fused, h => ({
						...(textScore.has(h.id) ? { fulltext: textScore.get(h.id) } : {}),
						...(similarity.has(h.id) ? { vector: similarity.get(h.id) } : {})
					})),
					mode: "hybrid"
				};
			}
		}
	},

	channels: {
		"knowledge.events": {
			group: "knowledge",
			async handler(this: Self, event: KnowledgeEvent, tx: Queryable, afterCommit: AfterCommit) {
				if (event.type === "knowledge.search.indexed" || !event.organizationId) return;
				const org = event.organizationId;
				const { rows } = await tx.query<ArticleState>(
					"SELECT * FROM kb_articles WHERE id = $1 AND organization_id = $2",
					[event.articleId, org]
				);
				const a = rows[0];
				const published = a?.status === "published";
				if (published)
					await tx.query(
						`INSERT INTO kb_search_index (article_id, organization_id, category_id, revision, title, body)
						 VALUES ($1, $2, $3, $4, $5, $6)
						 ON CONFLICT (article_id) DO UPDATE SET category_id = $3, revision = $4, title = $5, body = $6,
							indexed_at = now()`,
						[a.id, org, a.category_id, a.revision, a.title, a.body]
					);
				else await tx.query("DELETE FROM kb_search_index WHERE article_id = $1", [event.articleId]);
				await queueEmbedding(tx, org, event.articleId);
				afterCommit(() => void this.syncEmbeddings());
				const indexed = makeEvent("knowledge.search.indexed", {
					organizationId: org,
					articleId: event.articleId,
					revision: published ? a.revision : null,
					indexed: published
				});
				await writeManyToOutbox(tx, [indexed]);
			}
		}
	},

	methods: {
		// Brings the queued articles' embeddings up to date (embedding-sync.ts); one run at a time per replica.
		async syncEmbeddings(this: Self) {
			if (this.syncing) return this.syncing;
			// A collection removed behind this replica's back is looked up (ensured) again after a failure.
			const forget = (org: string) => (err: unknown) => {
				this.collections.delete(org);
				throw err;
			};
			const calls: EmbeddingCalls = {
				served: () => served(this, "embeddings.upsert"),
				upsert: async (org, a) =>
					this.callForOrganization(org, "embeddings.upsert", {
						id: await this.collectionOf(org),
						documents: [
							{
								sourceId: a.id,
								title: a.title,
								text: `# ${a.title}\n\n${a.body}`,
								kind: "markdown",
								metadata: { categoryId: a.category_id, articleId: a.id }
							}
						]
					}).catch(forget(org)),
				remove: async (org, id) =>
					this.callForOrganization(org, "embeddings.remove", {
						collectionId: await this.collectionOf(org),
						sourceIds: [id]
					}).catch(forget(org)),
				warn: message => this.logger.warn(message)
			};
			this.syncing = (async () => {
				try {
					await drainEmbeddings(await db(), calls);
				} catch (err) {
					this.logger.warn(`embedding sync stopped: ${(err as Error).message}`);
				} finally {
					this.syncing = undefined;
				}
			})();
			return this.syncing;
		},

		// The organization's "knowledge" collection (created on first use by embeddings-collections.ensure).
		async collectionOf(this: Self, organizationId: string): Promise<string> {
			const known = this.collections.get(organizationId);
			if (known) return known;
			const c = (await this.callForOrganization(organizationId, "embeddings-collections.ensure", {
				name: COLLECTION,
				description: "Published knowledge base articles (kept by the knowledge module)"
			})) as { id: string };
			this.collections.set(organizationId, c.id);
			return c.id;
		},

		// Articles by vector similarity, limited inside the embeddings query to the readable categories (metadata
		// filter); undefined without the embeddings module, or when its search fails (full text still answers). Only
		// ids and similarities are taken from it: titles and snippets come from this module's own index, under the
		// same permission join.
		async vectorRanking(this: Self, r: Reader, query: string, k: number, within: string | null) {
			if (!served(this, "embeddings.search")) return undefined;
			const readable = await categoriesFor(await db(), r, "read", within ?? undefined);
			if (!readable.length) return [];
			try {
				const found = (await this.callForOrganization(r.organizationId, "embeddings.search", {
					id: await this.collectionOf(r.organizationId),
					query,
					k,
					mode: "vector",
					filter: { categoryId: { in: readable } }
				})) as { results: { sourceId: string; score: number; scores?: { vector?: number } }[] };
				const best = new Map<string, number>();
				for (const x of found.results)
					if (!best.has(x.sourceId)) best.set(x.sourceId, x.scores?.vector ?? x.score);
				return [...best].map(([id, similarity]) => ({ id, similarity }));
			} catch (err) {
				this.collections.delete(r.organizationId);
				this.logger.warn(`vector search unavailable, full text only: ${(err as Error).message}`);
				return undefined;
			}
		}
	},

	created(this: Service) {
		(this as Self).collections = new Map();
	},

	// What failed, or what a replica that died had claimed, is picked up here.
	started(this: Service) {
		const self = this as Self;
		self.syncTimer = setInterval(() => void self.syncEmbeddings(), SYNC_EVERY_MS);
		self.syncTimer.unref();
	},

	async stopped(this: Service) {
		const self = this as Self;
		clearInterval(self.syncTimer);
		await self.syncing;
	}
};

// Whether any node (this one or another) offers the action now.
function served(svc: Service, action: string): boolean {
	const list = svc.broker.registry.getActionEndpoints(action) as { hasAvailable(): boolean } | undefined;
	return !!list?.hasAvailable();
}

function rank(hits: Hit[], scores: (h: Hit) => { fulltext?: number; vector?: number }) {
	return hits.map((h, i) => ({ ...h, rank: i + 1, scores: scores(h) }));
}

export default KnowledgeService;
