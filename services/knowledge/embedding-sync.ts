// Keeps the organization's "knowledge" collection of the embeddings module in step with the published articles,
// from kb_embedding_queue (filled by the indexer in its event's transaction). Runs outside any transaction: after
// each indexing commit on the replica that indexed, and every few seconds on every replica for what failed or was
// left by a replica that died (a claimed row is leased, then retried with back-off).
import type { Queryable } from "../../lib/db";

export interface EmbeddingCalls {
	served(): boolean;
	upsert(organizationId: string, article: ArticleText): Promise<unknown>;
	remove(organizationId: string, articleId: string): Promise<unknown>;
	warn(message: string): void;
}

export interface ArticleText {
	id: string;
	category_id: string;
	title: string;
	body: string;
}

const LEASE_S = 60;

export async function queueEmbedding(tx: Queryable, organizationId: string, articleId: string) {
	await tx.query(
		`INSERT INTO kb_embedding_queue (article_id, organization_id) VALUES ($1, $2)
		 ON CONFLICT (article_id) DO UPDATE SET queued_at = clock_timestamp(), next_attempt_at = now(), attempts = 0`,
		[articleId, organizationId]
	);
}

// Works through the due rows until none is left (or the embeddings module is not there).
export async function drainEmbeddings(db: Queryable, calls: EmbeddingCalls): Promise<number> {
	let done = 0;
	while (calls.served()) {
		// queued_at as text: a JS Date would drop its microseconds and never match again.
		const { rows } = await db.query<{ article_id: string; organization_id: string; queued_at: string }>(
			`UPDATE kb_embedding_queue SET next_attempt_at = now() + make_interval(secs => $1), attempts = attempts + 1
			 WHERE article_id = (SELECT article_id FROM kb_embedding_queue WHERE next_attempt_at <= now()
				ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
			 RETURNING article_id, organization_id, queued_at::text, attempts`,
			[LEASE_S]
		);
		const job = rows[0];
		if (!job) break;
		try {
			const { rows: found } = await db.query<ArticleText>(
				"SELECT id, category_id, title, body FROM kb_articles WHERE id = $1 AND status = 'published'",
				[job.article_id]
			);
			if (found[0]) await calls.upsert(job.organization_id, found[0]);
			else await calls.remove(job.organization_id, job.article_id);
			// Queued again meanwhile (another save): the newer row stays for the next round.
			await db.query("DELETE FROM kb_embedding_queue WHERE article_id = $1 AND queued_at = $2::timestamptz", [
				job.article_id,
				job.queued_at
			]);
			done++;
		} catch (err) {
			calls.warn(`embeddings of article ${job.article_id} not updated (retried): ${(err as Error).message}`);
			await db.query(
				`UPDATE kb_embedding_queue SET next_attempt_at = now() + make_interval(secs => least(300, 2 ^ attempts))
				 WHERE article_id = $1 AND queued_at = $2::timestamptz`,
				[job.article_id, job.queued_at]
			);
		}
	}
	return done;
}
