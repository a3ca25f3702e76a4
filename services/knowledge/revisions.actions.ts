// The revision actions of knowledge-articles: the history, the difference between two revisions, and restoring one.
import type { Context } from "moleculer";
import { getDb as db } from "../../lib/db";
import { lineDiff } from "../../lib/diff";
import { listOf } from "../../lib/response";
import { readerOf } from "./access";
import { liveChange, revisionNumber, revisionOf, save, visibleArticle, writableArticle, type Self } from "./store";
import * as R from "./knowledge.responses";

export const revisionActions = {
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
			const row = await this.withEvents(async (tx, publish) => {
				const a = await writableArticle(tx, r, ctx.params.id);
				const old = await revisionOf(tx, a.id, ctx.params.revision);
				const content = { title: old.title, body: old.body, tags: old.tags };
				return save(tx, publish, r, a, content, `restored revision ${old.number}`, true);
			});
			liveChange(this.broker, row.organization_id, "knowledge-articles", row.id, "updated");
			return row;
		}
	}
};
