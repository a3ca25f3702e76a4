// The knowledge articles' shared pieces: the row, the parameter rules, reading an article through the caller's
// category access, and writing the next revision (with its links and the event of a published article).
import type { Service, ServiceBroker } from "moleculer";
import { announceChange, type ChangeAction } from "../../lib/live";
import type { Queryable } from "../../lib/db";
import { isUuid } from "../../lib/db/tenant";
import { invalid, notFound } from "../../lib/errors";
import type { Publish } from "../../mixins/events.mixin";
import { ACCESS, accessParams, visibleCategory, type Reader } from "./access";
import { saveLinks } from "./links";
import "./knowledge.events";

export interface Self extends Service {
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
}

// Tells open knowledge pages, after the commit, that an article or a category changed: its kind and id, nothing
// else (no title, no label, no actor). The gateway hands it to every member holding knowledge:read, including those
// who cannot read the article's category; a page reads the article again through the permission-checked actions,
// so such a member learns no more than that some id changed.
export function liveChange(
	broker: ServiceBroker,
	organizationId: string,
	entity: "knowledge-articles" | "knowledge-categories",
	id: string,
	action: ChangeAction
): void {
	const noun = entity === "knowledge-articles" ? "article" : "category";
	announceChange(broker, undefined, { organizationId, entity, noun, id, action, permission: "knowledge:read" });
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

export type Content = { title?: string; body?: string; tags?: string[]; category_id?: string; note?: string };

export const title = { type: "string", min: 1, max: 300, trim: true, label: "Title" };
export const body = { type: "string", max: 500_000, optional: true, label: "Body" };
export const tags = {
	type: "array",
	max: 20,
	optional: true,
	label: "Tags",
	items: { type: "string", min: 1, max: 50, trim: true, pattern: /^[^,\n]+$/ }
};
export const note = { type: "string", max: 500, optional: true, label: "Revision note" };
export const categoryId = { type: "uuid", label: "Category" };
export const revisionNumber = { type: "number", integer: true, positive: true, convert: true };

const COLUMNS = `a.id, a.organization_id, a.category_id, a.title, a.slug, a.body, a.tags, a.status, a.revision,
	a.published_at, a.created_by, a.updated_by, a.created_at, a.updated_at`;

// The article if its category is readable by the caller (404 otherwise), with whether they may write it.
export async function visibleArticle(q: Queryable, r: Reader, id: string, lock = false) {
	if (!isUuid(id)) throw notFound("article");
	const { rows } = await q.query<ArticleRow & { can_write: boolean }>(
		`${ACCESS} SELECT ${COLUMNS}, x.can_write FROM kb_articles a JOIN kb_access x ON x.id = a.category_id
		 WHERE a.id = $5 AND a.organization_id = $1 AND x.can_read${lock ? " FOR UPDATE OF a" : ""}`,
		[...accessParams(r), id]
	);
	if (!rows[0]) throw notFound("article");
	return rows[0];
}

export async function writableArticle(q: Queryable, r: Reader, id: string) {
	const a = await visibleArticle(q, r, id, true);
	await visibleCategory(q, r, a.category_id, true);
	const { can_write: _, ...article } = a;
	return article as ArticleRow;
}

export function announce(
	publish: Publish,
	a: ArticleRow,
	type: "knowledge.article.created" | "knowledge.article.updated"
) {
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
export async function freeSlug(q: Queryable, organizationId: string, base: string) {
	const { rows } = await q.query<{ slug: string }>(
		"SELECT slug FROM kb_articles WHERE organization_id = $1 AND (slug = $2 OR slug LIKE $2 || '-%')",
		[organizationId, base]
	);
	const taken = new Set(rows.map(x => x.slug));
	let n = 1;
	while (taken.has(n === 1 ? base : `${base}-${n}`)) n++;
	return n === 1 ? base : `${base}-${n}`;
}

export async function addRevision(tx: Queryable, a: ArticleRow, userId: string | null, note = "") {
	await tx.query(
		`INSERT INTO kb_revisions (organization_id, article_id, number, title, body, tags, note, created_by)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		[a.organization_id, a.id, a.revision, a.title, a.body, a.tags, note, userId]
	);
	await saveLinks(tx, a.organization_id, a.id, a.body);
}

export async function revisionOf(q: Queryable, articleId: string, n: number, field = "revision") {
	const { rows } = await q.query<{ number: number; title: string; body: string; tags: string[] }>(
		"SELECT * FROM kb_revisions WHERE article_id = $1 AND number = $2",
		[articleId, n]
	);
	if (!rows[0]) throw invalid(field, `the article has no revision ${n}`);
	return rows[0];
}

// Writes the next revision of `a` with `changes` (nothing changed: nothing written, unless `force`).
export async function save(
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
