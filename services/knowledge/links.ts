// Links between articles, read from the Markdown: `[[slug]]` or `[[Title]]` (wiki style), and Markdown links to
// /knowledge/articles/<id>. Stored in kb_article_links so an article shows what links to it.
import type { Queryable } from "../../lib/db";

const WIKI = /\[\[([^\]\n|]{1,200})(?:\|[^\]\n]*)?\]\]/g;
const BY_ID = /\/knowledge\/articles\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/gi;

export function parseLinks(body: string): { names: string[]; ids: string[] } {
	const names = [...body.matchAll(WIKI)].map(m => m[1].trim()).filter(Boolean);
	const ids = [...body.matchAll(BY_ID)].map(m => m[1].toLowerCase());
	return { names: [...new Set(names)], ids: [...new Set(ids)] };
}

// "Getting Started: Setup!" -> "getting-started-setup"
export function slugify(text: string): string {
	const slug = text
		.normalize("NFKD")
		.replace(/[\u0300-\u036f]/g, "")
		.toLowerCase()
		.replace(/[^a-z0-9]+/g, "-")
		.replace(/^-+|-+$/g, "")
		.slice(0, 80)
		.replace(/-+$/, "");
	return slug || "article";
}

// Replaces the article's outgoing links with those its body names now (targets of the same organization only;
// names match a slug, or a title ignoring case).
export async function saveLinks(tx: Queryable, organizationId: string, articleId: string, body: string) {
	const { names, ids } = parseLinks(body);
	await tx.query("DELETE FROM kb_article_links WHERE from_article_id = $1", [articleId]);
	if (!names.length && !ids.length) return;
	await tx.query(
		`INSERT INTO kb_article_links (organization_id, from_article_id, to_article_id)
		 SELECT $1, $2, a.id FROM kb_articles a
		 WHERE a.organization_id = $1 AND a.id <> $2
		   AND (a.id = ANY($3::uuid[]) OR a.slug = ANY($4::text[]) OR lower(a.title) = ANY($5::text[]))
		 ON CONFLICT DO NOTHING`,
		[organizationId, articleId, ids, names, names.map(n => n.toLowerCase())]
	);
}
