// What the knowledge module's actions answer (their `response`): OpenAPI and the UI's generated types come from here.
import { listOf, named } from "../../lib/response";

export const KbCategory = named("KbCategory", {
	id: "uuid",
	parent_id: "uuid|nullable",
	name: "string",
	description: "string",
	position: "number|integer",
	// Restricted by grants of its own (otherwise it inherits its parent's, or is open).
	restricted: "boolean",
	can_write: "boolean",
	article_count: "number|integer",
	created_at: "date",
	updated_at: "date"
});

export const KbGrant = named("KbGrant", {
	id: "uuid",
	team_id: "uuid|nullable",
	team_name: "string|nullable",
	role: "string|nullable",
	access: { type: "enum", values: ["read", "write"] }
});

export const KbArticle = named("KbArticle", {
	id: "uuid",
	category_id: "uuid",
	title: "string",
	slug: "string",
	body: "string",
	tags: listOf("string"),
	status: { type: "enum", values: ["draft", "published"] },
	revision: "number|integer",
	published_at: "date|nullable",
	created_by: "uuid|nullable",
	updated_by: "uuid|nullable",
	created_at: "date",
	updated_at: "date"
});

const LinkedArticle = named("KbLinkedArticle", { id: "uuid", title: "string", slug: "string" });

// An article with the articles it links to and those linking to it (only those the caller may read).
export const KbArticleDetail = named("KbArticleDetail", {
	article: KbArticle,
	can_write: "boolean",
	links: listOf(LinkedArticle),
	backlinks: listOf(LinkedArticle)
});

export const KbArticlePage = {
	type: "object",
	props: {
		rows: listOf(
			named("KbArticleSummary", {
				id: "uuid",
				category_id: "uuid",
				title: "string",
				slug: "string",
				tags: listOf("string"),
				status: { type: "enum", values: ["draft", "published"] },
				revision: "number|integer",
				updated_at: "date"
			})
		),
		total: "number|integer",
		page: "number|integer",
		pageSize: "number|integer",
		totalPages: "number|integer"
	}
};

export const KbRevision = named("KbRevision", {
	id: "uuid",
	article_id: "uuid",
	number: "number|integer",
	title: "string",
	body: "string",
	tags: listOf("string"),
	note: "string",
	created_by: "uuid|nullable",
	created_at: "date"
});

const LinePart = named("KbLinePart", { op: { type: "enum", values: ["equal", "added", "removed"] }, text: "string" });

export const KbRevisionDiff = named("KbRevisionDiff", {
	from: "number|integer",
	to: "number|integer",
	changed: "boolean",
	title: { type: "object", props: { from: "string", to: "string", changed: "boolean" } },
	tags: { type: "object", props: { added: listOf("string"), removed: listOf("string") } },
	body: listOf(LinePart)
});

export const KbSearchResults = named("KbSearchResults", {
	results: listOf(
		named("KbSearchResult", {
			id: "uuid",
			category_id: "uuid",
			title: "string",
			slug: "string",
			// HTML-escaped text with the matched words in <mark>…</mark>.
			snippet: "string",
			// Fused (reciprocal rank) in hybrid mode, ts_rank_cd in full-text mode.
			score: "number",
			rank: "number|integer",
			// ts_rank_cd, and the similarity of the article's best chunk.
			scores: { type: "object", props: { fulltext: "number|optional", vector: "number|optional" } }
		})
	),
	mode: { type: "enum", values: ["fulltext", "hybrid"] }
});
