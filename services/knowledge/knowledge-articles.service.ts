// knowledge-articles: Markdown articles in categories, every save a numbered revision (diff and restore), links
// between articles, draft/published. Publishing, and every save of a published article, announces the article on
// knowledge.events (outbox), which is how it reaches the search index; unpublishing or removing takes it out.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb as db, type Queryable } from "../../lib/db";
import { isUuid } from "../../lib/db/tenant";
import { lineDiff } from "../../lib/diff";
import { conflict, fromDbError, invalid, notFound } from "../../lib/errors";
import { listOf } from "../../lib/response";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import { ACCESS, accessParams, readerOf, type Reader } from "./access";
import { visibleCategory } from "./knowledge-categories.service";
import { saveLinks, slugify } from "./links";
import * as R from "./knowledge.responses";
import "./knowledge.events";

interface Self extends Service {
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
}

export interface ArticleRow {
	id: string;
	organization_id: string;
	category_id: string;
	title: string;
	slug: string;
	body: string;
	tags: string[];
	status: "draft" | "published";
	revision: number;
	published_at: Date | null;
}

type Content = { title?: string; body?: string; tags?: string[]; category_id?: string; note?: string };

const title = { type: "string", min: 1, max: 300, trim: true, label: "Title" };
const body = { type: "string", max: 500_000, optional: true, label: "Body" };
const tags = {
	type: "array",
	max: 20,
	optional: true,
	label: "Tags",
	items: { type: "string", min: 1, max: 50, trim: true, pattern: /^[^,\n]+$/ }
};
const note = { type: "string", max: 500, optional: true, label: "Revision note" };
const categoryId = { type: "uuid", label: "Category" };
const revisionNumber = { type: "number", integer: true, positive: true, convert: true };

const COLUMNS = `a.id, a.organization_id, a.category_id, a.title, a.slug, a.body, a.tags, a.status, a.revision,
	a.published_at, a.created_by, a.updated_by, a.created_at, a.updated_at`;

// The article if its category is readable by the caller (404 otherwise), with whether they may write it.
async function visibleArticle(q: Queryable, r: Reader, id: string, lock = false) {
	if (!isUuid(id)) throw notFound("article");
	const { rows } = await q.query<ArticleRow & { can_write: boolean }>(
		`${ACCESS} SELECT ${COLUMNS}, x.can_write FROM kb_articles a JOIN kb_access x ON x.id = a.category_id
		 WHERE a.id = $5 AND a.organization_id = $1 AND x.can_read${lock ? " FOR UPDATE OF a" : ""}`,
		[...accessParams(r), id]
	);
	if (!rows[0]) throw notFound("article");
	return rows[0];
}

async function writableArticle(q: Queryable, r: Reader, id: string) {
	const a = await visibleArticle(q, r, id, true);
	await visibleCategory(q, r, a.category_id, true);
	const { can_write: _, ...article } = a;
	return article as ArticleRow;
}

function announce(publish: Publish, a: ArticleRow, type: "knowledge.article.created" | "knowledge.article.updated") {
	publish(type, {
		organizationId: a.organization_id,
		articleId: a.id,
		categoryId: a.category_id,
		title: a.title,
		revision: a.revision,
		status: a.status
	});
}

// A free slug: the title's, or with -2, -3, … when taken in the organization.
async function freeSlug(q: Queryable, organizationId: string, base: string) {
	const { rows } = await q.query<{ slug: string }>(
		"SELECT slug FROM kb_articles WHERE organization_id = $1 AND (slug = $2 OR slug LIKE $2 || '-%')",
		[organizationId, base]
	);
	const taken = new Set(rows.map(x => x.slug));
	let n = 1;
	while (taken.has(n === 1 ? base : `${base}-${n}`)) n++;
	return n === 1 ? base : `${base}-${n}`;
}

async function addRevision(tx: Queryable, a: ArticleRow, userId: string | null, note = "") {
	await tx.query(
		`INSERT INTO kb_revisions (organization_id, article_id, number, title, body, tags, note, created_by)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		[a.organization_id, a.id, a.revision, a.title, a.body, a.tags, note, userId]
	);
	await saveLinks(tx, a.organization_id, a.id, a.body);
}

async function revisionOf(q: Queryable, articleId: string, n: number, field = "revision") {
	const { rows } = await q.query<{ number: number; title: string; body: string; tags: string[] }>(
		"SELECT * FROM kb_revisions WHERE article_id = $1 AND number = $2",
		[articleId, n]
	);
	if (!rows[0]) throw invalid(field, `the article has no revision ${n}`);
	return rows[0];
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
				return this.withEvents(async (tx, publish) => {
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
				return this.withEvents(async (tx, publish) => {
					const a = await writableArticle(tx, r, id);
					if (changes.category_id && changes.category_id !== a.category_id)
						await visibleCategory(tx, r, changes.category_id, true, "category_id");
					return save(tx, publish, r, a, changes, why);
				});
			}
		},

		publish: {
			rest: "POST /:id/publish",
			permission: "knowledge:write",
			params: { id: "string" },
			response: R.KbArticle,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const r = readerOf(ctx);
				return this.withEvents(async (tx, publish) => {
					const a = await writableArticle(tx, r, ctx.params.id);
					if (a.status === "published") return a;
					const { rows } = await tx.query<ArticleRow>(
						`UPDATE kb_articles SET status = 'published', published_at = now(), updated_by = $2,
						 updated_at = now() WHERE id = $1 RETURNING *`,
						[a.id, r.userId]
					);
					announce(
						publish,
						rows[0],
						a.published_at ? "knowledge.article.updated" : "knowledge.article.created"
					);
					return rows[0];
				});
			}
		},

		// Back to a draft: out of search until published again.
		unpublish: {
			rest: "POST /:id/unpublish",
			permission: "knowledge:write",
			params: { id: "string" },
			response: R.KbArticle,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const r = readerOf(ctx);
				return this.withEvents(async (tx, publish) => {
					const a = await writableArticle(tx, r, ctx.params.id);
					if (a.status === "draft") return a;
					const { rows } = await tx.query<ArticleRow>(
						`UPDATE kb_articles SET status = 'draft', updated_by = $2, updated_at = now()
						 WHERE id = $1 RETURNING *`,
						[a.id, r.userId]
					);
					announce(publish, rows[0], "knowledge.article.updated");
					return rows[0];
				});
			}
		},

		remove: {
			rest: "DELETE /:id",
			permission: "knowledge:write",
			params: { id: "string" },
			response: R.KbArticle,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const r = readerOf(ctx);
				return this.withEvents(async (tx, publish) => {
					const a = await writableArticle(tx, r, ctx.params.id);
					await tx.query("DELETE FROM kb_articles WHERE id = $1", [a.id]);
					publish("knowledge.article.deleted", {
						organizationId: a.organization_id,
						articleId: a.id,
						categoryId: a.category_id,
						title: a.title
					});
					return a;
				});
			}
		},

		revisions: {
			rest: "GET /:id/revisions",
			permission: "knowledge:read",
			params: { id: "string" },
			response: listOf(R.KbRevision),
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const q = await db();
				const a = await visibleArticle(q, readerOf(ctx), ctx.params.id);
				const { rows } = await q.query(
					`SELECT id, article_id, number, title, body, tags, note, created_by, created_at FROM kb_revisions
					 WHERE article_id = $1 ORDER BY number DESC`,
					[a.id]
				);
				return rows;
			}
		},

		// What changed from one revision to another: the title, the tags, the body line by line.
		diff: {
			rest: "GET /:id/diff",
			permission: "knowledge:read",
			params: { id: "string", from: revisionNumber, to: revisionNumber },
			response: R.KbRevisionDiff,
			async handler(this: Self, ctx: Context<{ id: string; from: number; to: number }>) {
				const q = await db();
				const a = await visibleArticle(q, readerOf(ctx), ctx.params.id);
				const from = await revisionOf(q, a.id, ctx.params.from, "from");
				const to = await revisionOf(q, a.id, ctx.params.to, "to");
				const body = lineDiff(from.body, to.body);
				const tags = {
					added: to.tags.filter(t => !from.tags.includes(t)),
					removed: from.tags.filter(t => !to.tags.includes(t))
				};
				const titleChanged = from.title !== to.title;
				return {
					from: from.number,
					to: to.number,
					changed:
						titleChanged || tags.added.length + tags.removed.length > 0 || body.some(p => p.op !== "equal"),
					title: { from: from.title, to: to.title, changed: titleChanged },
					tags,
					body
				};
			}
		},

		// Makes an old revision's content the newest revision (history is kept: nothing is rewritten).
		restore: {
			rest: "POST /:id/restore",
			permission: "knowledge:write",
			params: { $$strict: true, id: "string", revision: { ...revisionNumber, label: "Revision" } },
			response: R.KbArticle,
			async handler(this: Self, ctx: Context<{ id: string; revision: number }>) {
				const r = readerOf(ctx);
				return this.withEvents(async (tx, publish) => {
					const a = await writableArticle(tx, r, ctx.params.id);
					const old = await revisionOf(tx, a.id, ctx.params.revision);
					const content = { title: old.title, body: old.body, tags: old.tags };
					return save(tx, publish, r, a, content, `restored revision ${old.number}`, true);
				});
			}
		}
	}
};

// Writes the next revision of `a` with `changes` (nothing changed: nothing written, unless `force`).
async function save(
	tx: Queryable,
	publish: Publish,
	r: Reader,
	a: ArticleRow,
	changes: Content,
	note?: string,
	force = false
): Promise<ArticleRow> {
	const next = {
		title: changes.title ?? a.title,
		body: changes.body ?? a.body,
		tags: changes.tags ?? a.tags,
		category_id: changes.category_id ?? a.category_id
	};
	const same =
		next.title === a.title &&
		next.body === a.body &&
		next.category_id === a.category_id &&
		JSON.stringify(next.tags) === JSON.stringify(a.tags);
	if (same && !force) return a;
	const { rows } = await tx.query<ArticleRow>(
		`UPDATE kb_articles SET title = $2, body = $3, tags = $4, category_id = $5, revision = revision + 1,
			updated_by = $6, updated_at = now() WHERE id = $1 RETURNING *`,
		[a.id, next.title, next.body, next.tags, next.category_id, r.userId]
	);
	await addRevision(tx, rows[0], r.userId, note);
	if (rows[0].status === "published") announce(publish, rows[0], "knowledge.article.updated");
	return rows[0];
}

export default KnowledgeArticlesService;
