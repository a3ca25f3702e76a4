// Full-text search over kb_search_index, joined inside the query with the categories the caller may read: the
// LIMIT applies to readable articles only, so k readable results come back however many others match. The join is
// on the article's category and status now, not as last indexed: an article moved into a restricted category or
// unpublished is out of reach at once, before the indexer has caught up. Snippets come
// from ts_headline over the same rows, HTML-escaped here with the matches in <mark>.
import type { Queryable } from "../../lib/db";
import { ACCESS, accessParams, type Reader } from "./access";

export interface Hit {
	id: string;
	category_id: string;
	title: string;
	slug: string;
	snippet: string;
	score: number;
}

// Private-use characters mark the matches: no Markdown uses them, and they survive the escaping below.
const START = "\uE000";
const STOP = "\uE001";
const HEADLINE = `StartSel=${START}, StopSel=${STOP}, MaxFragments=2, MaxWords=30, MinWords=12, FragmentDelimiter=" … "`;

// The categories searched: readable ones, within `$6` (a category and its subcategories) when given.
const SCOPE = `${ACCESS},
kb_within AS (
	SELECT id FROM kb_categories WHERE id = $6::uuid AND organization_id = $1::uuid
	UNION ALL SELECT c.id FROM kb_categories c JOIN kb_within w ON c.parent_id = w.id
),
kb_scope AS (
	SELECT id FROM kb_access WHERE can_read AND ($6::uuid IS NULL OR id IN (SELECT id FROM kb_within))
)`;

export function escapeSnippet(text: string): string {
	return text
		.replace(/&/g, "&amp;")
		.replace(/</g, "&lt;")
		.replace(/>/g, "&gt;")
		.replace(/"/g, "&quot;")
		.replace(new RegExp(START, "g"), "<mark>")
		.replace(new RegExp(STOP, "g"), "</mark>");
}

// The best `limit` readable published articles for `query` (websearch syntax: words, "phrases", -not, or).
export async function fullText(
	q: Queryable,
	r: Reader,
	query: string,
	limit: number,
	within: string | null
): Promise<Hit[]> {
	const { rows } = await q.query<Hit>(
		`${SCOPE},
		kb_top AS (
			SELECT s.article_id, ts_rank_cd(s.tsv, wq, 1) AS score
			FROM kb_search_index s JOIN kb_articles a ON a.id = s.article_id AND a.status = 'published'
				JOIN kb_scope sc ON sc.id = a.category_id, websearch_to_tsquery('english', $5) wq
			WHERE s.organization_id = $1::uuid AND s.tsv @@ wq
			ORDER BY score DESC, s.article_id LIMIT $7
		)
		SELECT s.article_id AS id, a.category_id, s.title, a.slug, t.score,
			ts_headline('english', s.body, websearch_to_tsquery('english', $5), '${HEADLINE}') AS snippet
		FROM kb_top t JOIN kb_search_index s ON s.article_id = t.article_id JOIN kb_articles a ON a.id = s.article_id
		ORDER BY t.score DESC, s.article_id`,
		[...accessParams(r), query, within, limit]
	);
	return rows.map(row => ({ ...row, score: Number(row.score), snippet: escapeSnippet(row.snippet) }));
}

// The given articles (found by the vector search) that are indexed and readable, with snippets for `query`.
export async function readableHits(
	q: Queryable,
	r: Reader,
	query: string,
	ids: string[],
	within: string | null
): Promise<Hit[]> {
	if (!ids.length) return [];
	const { rows } = await q.query<Hit>(
		`${SCOPE}
		SELECT s.article_id AS id, a.category_id, s.title, a.slug, 0 AS score,
			ts_headline('english', s.body, websearch_to_tsquery('english', $5), '${HEADLINE}') AS snippet
		FROM kb_search_index s JOIN kb_articles a ON a.id = s.article_id AND a.status = 'published'
			JOIN kb_scope sc ON sc.id = a.category_id
		WHERE s.organization_id = $1::uuid AND s.article_id = ANY($7::uuid[])`,
		[...accessParams(r), query, within, ids]
	);
	return rows.map(row => ({ ...row, score: 0, snippet: escapeSnippet(row.snippet) }));
}

// Reciprocal rank fusion of ranked id lists (k0 = 60, the usual constant): an id's score is the sum over the
// lists of 1 / (k0 + its rank).
export function fuse(lists: string[][], k0 = 60): Map<string, number> {
	const scores = new Map<string, number>();
	for (const list of lists) list.forEach((id, i) => scores.set(id, (scores.get(id) ?? 0) + 1 / (k0 + i + 1)));
	return scores;
}
