// knowledge-articles: Markdown articles in categories, every save a numbered revision (diff and restore), links
// between articles, draft/published. Publishing, and every save of a published article, announces the article on
// knowledge.events (outbox), which is how it reaches the search index; unpublishing or removing takes it out. The
// revision actions are in revisions.actions.ts, the pieces both use in articles.ts.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb as db } from "../../lib/db";
import { conflict, fromDbError } from "../../lib/errors";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import type { ChangeAction } from "../../lib/live";
import { ACCESS, accessParams, readerOf, visibleCategory } from "./access";
import {
	announce,
	addRevision,
	body,
	categoryId,
	freeSlug,
	liveChange,
	note,
	save,
	tags,
	title,
	visibleArticle,
	writableArticle,
	type ArticleRow,
	type Content,
	type Self
} from "./store";
import { slugify } from "./links";
import { revisionActions } from "./revisions.actions";
import * as R from "./knowledge.responses";
import "./knowledge.events";

// publish, unpublish and remove: the article the caller may write, changed by one statement ($1 its id, $2 the
// caller; RETURNING * unless it removes), its event on knowledge.events in the same transaction, then the live
// notice. `done`: the article is that way already (nothing written, nothing announced).
async function changeArticle(
	self: Self,
	ctx: Context<{ id: string }>,
	change: {
		done?: (a: ArticleRow) => boolean;
		sql: string;
		params?: (a: ArticleRow, userId: string | null) => unknown[];
		event: (publish: Publish, before: ArticleRow, after: ArticleRow) => void;
		action: ChangeAction;
	}
): Promise<ArticleRow> {
	const r = readerOf(ctx);
	let changed = false;
	const row = await self.withEvents(async (tx, publish) => {
		const a = await writableArticle(tx, r, ctx.params.id);
		if (change.done?.(a)) return a;
		const { rows } = await tx.query<ArticleRow>(change.sql, change.params?.(a, r.userId) ?? [a.id, r.userId]);
		change.event(publish, a, rows[0] ?? a);
		changed = true;
		return rows[0] ?? a;
	});
	if (changed) liveChange(self.broker, row.organization_id, "knowledge-articles", row.id, change.action);
	return row;
}

const KnowledgeArticlesService: ServiceSchema = {
	name: "knowledge-articles",
	mixins: [EventsMixin],
	settings: { rest: "/knowledge/articles" },

	actions: {
		// A page of the articles in categories the caller may read, newest change first.
		list: {
			rest: "GET /",
			permission: "knowledge:read",
			params: {
				category_id: { type: "uuid", optional: true },
				status: { type: "enum", values: ["draft", "published"], optional: true },
				tag: { type: "string", max: 50, optional: true },
				search: { type: "string", max: 200, optional: true },
				page: { type: "number", integer: true, positive: true, max: 100_000, default: 1, convert: true },
				pageSize: { type: "number", integer: true, positive: true, max: 100, default: 50, convert: true }
			},
			response: R.KbArticlePage,
			async handler(this: Self, ctx: Context<any>) {
				const { category_id, status, tag, search, page, pageSize } = ctx.params;
				const r = readerOf(ctx);
				const sql = `${ACCESS} SELECT a.id, a.category_id, a.title, a.slug, a.tags, a.status, a.revision,
						a.updated_at, count(*) OVER ()::int AS total
					FROM kb_articles a JOIN kb_access x ON x.id = a.category_id AND x.can_read
					WHERE a.organization_id = $1 AND ($5::uuid IS NULL OR a.category_id = $5)
					  AND ($6::text IS NULL OR a.status = $6) AND ($7::text IS NULL OR $7 = ANY(a.tags))
					  AND ($8::text IS NULL OR a.title ILIKE '%' || $8 || '%')
					ORDER BY a.updated_at DESC, a.id LIMIT $9 OFFSET $10`;
				const like = search?.replace(/[\\%_]/g, (m: string) => `\\${m}`);
				const { rows } = await (
					await db()
				).query<{ total: number }>(sql, [
					...accessParams(r),
					category_id ?? null,
					status ?? null,
					tag ?? null,
					like ?? null,
					pageSize,
					(page - 1) * pageSize
				]);
				const total = rows[0]?.total ?? 0;
				return {
					rows: rows.map(({ total: _, ...row }) => row),
					total,
					page,
					pageSize,
					totalPages: Math.ceil(total / pageSize)
				};
			}
		},

		get: {
			rest: "GET /:id",
			permission: "knowledge:read",
			params: { id: "string" },
			response: R.KbArticleDetail,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const q = await db();
				const r = readerOf(ctx);
				const { can_write, ...article } = await visibleArticle(q, r, ctx.params.id);
				const linked = (from: string, to: string) =>
					q
						.query(
							`${ACCESS} SELECT a.id, a.title, a.slug FROM kb_article_links l
							 JOIN kb_articles a ON a.id = l.${to} JOIN kb_access x ON x.id = a.category_id AND x.can_read
							 WHERE l.${from} = $5 ORDER BY a.title`,
							[...accessParams(r), article.id]
						)
						.then(res => res.rows);
				const [links, backlinks] = await Promise.all([
					linked("from_article_id", "to_article_id"),
					linked("to_article_id", "from_article_id")
				]);
				return { article, can_write: r.writer && can_write, links, backlinks };
			}
		},

		// A new article (revision 1) in a category the caller may write in; `status: "published"` publishes it.
		create: {
			rest: "POST /",
			permission: "knowledge:write",
			params: {
				$$strict: true,
				category_id: categoryId,
				title,
				body,
				tags,
				slug: { type: "string", min: 1, max: 80, pattern: /^[a-z0-9]+(-[a-z0-9]+)*$/, optional: true },
				status: { type: "enum", values: ["draft", "published"], optional: true, label: "Status" },
				note
			},
			response: R.KbArticle,
			async handler(this: Self, ctx: Context<Content & { title: string; category_id: string; slug?: string }>) {
				const r = readerOf(ctx);
				const p = ctx.params as typeof ctx.params & { status?: "draft" | "published" };
				const published = p.status === "published";
				const row = await this.withEvents(async (tx, publish) => {
					await visibleCategory(tx, r, p.category_id, true, "category_id");
					const slug = p.slug ?? (await freeSlug(tx, r.organizationId, slugify(p.title)));
					const { rows } = await tx
						.query<ArticleRow>(
							`INSERT INTO kb_articles (organization_id, category_id, title, slug, body, tags, status,
								published_at, created_by, updated_by)
							 VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $8 THEN now() END, $9, $9) RETURNING *`,
							[
								r.organizationId,
								p.category_id,
								p.title,
								slug,
								p.body ?? "",
								p.tags ?? [],
								published ? "published" : "draft",
								published,
								r.userId
							]
						)
						.catch(err => {
							throw err?.code === "23505"
								? conflict("an article with this slug already exists", "slug")
								: fromDbError(err, "article");
						});
					await addRevision(tx, rows[0], r.userId, p.note);
					if (published) announce(publish, rows[0], "knowledge.article.created");
					return rows[0];
				});
				liveChange(this.broker, row.organization_id, "knowledge-articles", row.id, "created");
				return row;
			}
		},

		// Saves a new revision (title, body, tags, category); a published article stays published with it.
		update: {
			rest: "PATCH /:id",
			permission: "knowledge:write",
			params: {
				$$strict: true,
				id: "string",
				category_id: { ...categoryId, optional: true },
				title: { ...title, optional: true },
				body,
				tags,
				note
			},
			response: R.KbArticle,
			async handler(this: Self, ctx: Context<Content & { id: string }>) {
				const r = readerOf(ctx);
				const { id, note: why, ...changes } = ctx.params;
				const row = await this.withEvents(async (tx, publish) => {
					const a = await writableArticle(tx, r, id);
					if (changes.category_id && changes.category_id !== a.category_id)
						await visibleCategory(tx, r, changes.category_id, true, "category_id");
					return save(tx, publish, r, a, changes, why);
				});
				liveChange(this.broker, row.organization_id, "knowledge-articles", row.id, "updated");
				return row;
			}
		},

		publish: {
			rest: "POST /:id/publish",
			permission: "knowledge:write",
			params: { id: "string" },
			response: R.KbArticle,
			handler(this: Self, ctx: Context<{ id: string }>) {
				return changeArticle(this, ctx, {
					done: a => a.status === "published",
					sql: `UPDATE kb_articles SET status = 'published', published_at = now(), updated_by = $2,
						updated_at = now() WHERE id = $1 RETURNING *`,
					event: (publish, before, after) =>
						announce(
							publish,
							after,
							before.published_at ? "knowledge.article.updated" : "knowledge.article.created"
						),
					action: "updated"
				});
			}
		},

		// Back to a draft: out of search until published again.
		unpublish: {
			rest: "POST /:id/unpublish",
			permission: "knowledge:write",
			params: { id: "string" },
			response: R.KbArticle,
			handler(this: Self, ctx: Context<{ id: string }>) {
				return changeArticle(this, ctx, {
					done: a => a.status === "draft",
					sql: `UPDATE kb_articles SET status = 'draft', updated_by = $2, updated_at = now()
						WHERE id = $1 RETURNING *`,
					event: (publish, _, after) => announce(publish, after, "knowledge.article.updated"),
					action: "updated"
				});
			}
		},

		remove: {
			rest: "DELETE /:id",
			permission: "knowledge:write",
			params: { id: "string" },
			response: R.KbArticle,
			handler(this: Self, ctx: Context<{ id: string }>) {
				return changeArticle(this, ctx, {
					sql: "DELETE FROM kb_articles WHERE id = $1",
					params: a => [a.id],
					event: (publish, a) =>
						publish("knowledge.article.deleted", {
							organizationId: a.organization_id,
							articleId: a.id,
							categoryId: a.category_id,
							title: a.title
						}),
					action: "removed"
				});
			}
		},

		...revisionActions
	}
};

export default KnowledgeArticlesService;
