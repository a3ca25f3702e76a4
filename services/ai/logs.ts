// The completion log as clients read it: the filtered list, one entry with its stored content, statistics over
// time computed in SQL, and a CSV export streamed page by page. Every query is bound to the caller's organization;
// the filters are the same everywhere, so a chart, a table and an export of one filter agree.
import { Readable } from "stream";
import type { Context } from "moleculer";
import type { AuthInfo } from "../../lib/permissions";
import { holds } from "../../lib/authz";
import { TenantSql, tenantSql, where } from "../../lib/db/tenant";
import { invalid } from "../../lib/errors";
import { asCsvDownload, csvField } from "../../lib/csv";
import * as R from "./ai.responses";

export const filterParams = {
	model: { type: "string", max: 200, optional: true },
	status: { type: "enum", values: R.LOG_STATUSES, optional: true },
	userId: { type: "uuid", optional: true },
	apiKeyId: { type: "uuid", optional: true },
	from: { type: "date", convert: true, optional: true },
	to: { type: "date", convert: true, optional: true }
} as const;

export interface LogFilter {
	model?: string;
	status?: string;
	userId?: string;
	apiKeyId?: string;
	from?: Date;
	to?: Date;
}

// The WHERE clause of a filter over ai_completion_logs aliased `l`, its values appended to args.
export function logWhere(args: unknown[], p: LogFilter): string {
	return where(
		args,
		["l.organization_id = $org", null],
		["(l.requested_model = ? OR l.served_model = ?)", p.model || undefined],
		["l.status = ?", p.status || undefined],
		["l.user_id = ?", p.userId || undefined],
		["l.api_key_id = ?", p.apiKeyId || undefined],
		["l.created_at >= ?", p.from || undefined],
		["l.created_at < ?", p.to || undefined]
	);
}

// Columns of a list row; the API key's and the provider's names come with it (a reporting join behind ai's action).
export const LIST_COLUMNS = `l.id, l.request_id, l.user_id, l.api_key_id, k.name AS api_key_name, l.service, l.kind,
	l.requested_model, l.served_model, l.provider_id, p.name AS provider_name, l.fallback_path, l.stream, l.cache_hit,
	l.prompt_tokens, l.completion_tokens, l.cached_tokens, l.cost, l.latency_ms, l.first_token_ms, l.status, l.error,
	l.prompt, l.created_at`;
export const JOINS = `LEFT JOIN api_keys k ON k.id = l.api_key_id AND k.organization_id = l.organization_id
	LEFT JOIN ai_providers p ON p.id = l.provider_id AND p.organization_id = l.organization_id`;

export async function listLogs(t: TenantSql, p: LogFilter & { limit: number }) {
	const args: unknown[] = [];
	const w = logWhere(args, p);
	const rows = await t.rows(
		`SELECT ${LIST_COLUMNS} FROM ai_completion_logs l ${JOINS} WHERE ${w} ORDER BY l.created_at DESC LIMIT ${p.limit}`,
		args
	);
	const totals = await t.one(
		`SELECT count(*)::int AS requests, COALESCE(sum(prompt_tokens), 0)::int AS prompt_tokens,
		 COALESCE(sum(completion_tokens), 0)::int AS completion_tokens, COALESCE(sum(cost), 0) AS cost
		 FROM ai_completion_logs l WHERE ${w}`,
		args
	);
	return { rows: rows.map(numeric), totals: { ...totals, cost: Number(totals.cost) } };
}

// One entry with who made it (user, key) and, where the organization keeps them, the request and the answer. Those
// are the author's words: only the author and those who manage AI (`readsAll`) see them; others see that they exist.
export async function logDetail(t: TenantSql, id: string, reader: { userId?: string; readsAll: boolean }) {
	const row = await t.byId(
		"completion log entry",
		`SELECT ${LIST_COLUMNS}, u.name AS user_name, u.email AS user_email, l.request_body, l.response_body
		 FROM ai_completion_logs l ${JOINS}
		 LEFT JOIN users u ON u.id = l.user_id
		 WHERE l.id = $1 AND l.organization_id = $org`,
		id
	);
	const content_stored = row.request_body != null || row.response_body != null;
	const content_hidden = content_stored && !reader.readsAll && (!row.user_id || row.user_id !== reader.userId);
	if (content_hidden) Object.assign(row, { request_body: null, response_body: null });
	return { ...numeric(row), content_stored, content_hidden };
}

const numeric = <T extends { cost?: unknown }>(row: T): T => ({ ...row, cost: Number(row.cost ?? 0) });

const BUCKET_MS = { hour: 3600_000, day: 86400_000 } as const;
const MAX_BUCKETS = 1000;

// Requests, errors, tokens, cost and latency per time bucket and model (the model that served, else the one asked
// for). Without `from`, the last 48 hours (by hour) or 30 days (by day).
export async function logStats(t: TenantSql, p: LogFilter & { bucket: "hour" | "day" }) {
	const to = p.to ?? new Date();
	const from = p.from ?? new Date(to.getTime() - (p.bucket === "hour" ? 48 : 30) * BUCKET_MS[p.bucket]);
	if ((to.getTime() - from.getTime()) / BUCKET_MS[p.bucket] > MAX_BUCKETS)
		throw invalid("from", `spans more than ${MAX_BUCKETS} ${p.bucket}s; choose a shorter range or bucket=day`);
	const args: unknown[] = [p.bucket];
	const w = logWhere(args, { ...p, from, to });
	const rows = await t.rows(
		`SELECT date_trunc($1, l.created_at) AS bucket, COALESCE(l.served_model, l.requested_model) AS model,
		 count(*)::int AS requests, count(*) FILTER (WHERE l.status <> 'success')::int AS errors,
		 COALESCE(sum(l.prompt_tokens), 0)::int AS prompt_tokens,
		 COALESCE(sum(l.completion_tokens), 0)::int AS completion_tokens, COALESCE(sum(l.cost), 0) AS cost,
		 round(avg(l.latency_ms))::int AS avg_latency_ms,
		 round(percentile_cont(0.95) WITHIN GROUP (ORDER BY l.latency_ms))::int AS p95_latency_ms
		 FROM ai_completion_logs l WHERE ${w} GROUP BY 1, 2 ORDER BY 1, 2`,
		args
	);
	return {
		bucket: p.bucket,
		from: from.toISOString(),
		to: to.toISOString(),
		rows: rows.map(r => ({ ...r, bucket: new Date(r.bucket).toISOString(), cost: Number(r.cost) }))
	};
}

const CSV_COLUMNS = [
	"created_at",
	"request_id",
	"status",
	"kind",
	"requested_model",
	"served_model",
	"provider_name",
	"fallback_path",
	"stream",
	"cache_hit",
	"prompt_tokens",
	"completion_tokens",
	"cached_tokens",
	"cost",
	"latency_ms",
	"first_token_ms",
	"user_id",
	"api_key_name",
	"service",
	"error"
];
const PAGE = 1000;

// The filtered log as CSV, newest first, read a page at a time (keyset on created_at, id) as the client takes it.
export function logCsv(t: TenantSql, p: LogFilter): Readable {
	async function* lines() {
		yield CSV_COLUMNS.join(",") + "\r\n";
		let after: { created_at: Date; id: string } | undefined;
		for (;;) {
			const args: unknown[] = [];
			let w = logWhere(args, p);
			if (after) {
				args.push(after.created_at, after.id);
				w += ` AND (l.created_at, l.id) < ($${args.length - 1}, $${args.length})`;
			}
			const rows = await t.rows(
				`SELECT ${LIST_COLUMNS} FROM ai_completion_logs l ${JOINS} WHERE ${w}
				 ORDER BY l.created_at DESC, l.id DESC LIMIT ${PAGE}`,
				args
			);
			// The path reads as steps, not as JSON.
			const cell = (r: Record<string, any>, c: string) => (c === "fallback_path" ? r[c]?.join(" > ") : r[c]);
			if (rows.length)
				yield rows.map(r => CSV_COLUMNS.map(c => csvField(cell(r, c))).join(",") + "\r\n").join("");
			if (rows.length < PAGE) return;
			after = rows[rows.length - 1];
		}
	}
	return Readable.from(lines());
}

// The actions, spread into the ai service's: read with ai:read, like the list.
export const logActions = {
	logs: {
		rest: "GET /logs",
		response: R.CompletionLogs,
		permission: "ai:read",
		params: {
			$$strict: true,
			...filterParams,
			limit: { type: "number", integer: true, min: 1, max: 500, default: 100, convert: true }
		},
		handler(ctx: Context<LogFilter & { limit: number }>) {
			return listLogs(tenantSql(ctx), ctx.params);
		}
	},

	logStats: {
		rest: "GET /logs/stats",
		response: R.LogStats,
		permission: "ai:read",
		params: { $$strict: true, ...filterParams, bucket: { type: "enum", values: ["hour", "day"], default: "hour" } },
		handler(ctx: Context<LogFilter & { bucket: "hour" | "day" }>) {
			return logStats(tenantSql(ctx), ctx.params);
		}
	},

	exportLogs: {
		rest: "GET /logs/export",
		permission: "ai:read",
		response: "string",
		responseType: "text/csv",
		params: { $$strict: true, ...filterParams },
		handler(ctx: Context<LogFilter>) {
			const stream = logCsv(tenantSql(ctx), ctx.params);
			const day = new Date().toISOString().slice(0, 10);
			asCsvDownload(ctx.meta as Record<string, unknown>, `completion-log-${day}.csv`);
			return stream;
		}
	},

	log: {
		rest: "GET /logs/:id",
		response: R.CompletionLogDetail,
		permission: "ai:read",
		params: { id: "string" },
		handler(ctx: Context<{ id: string }, { auth?: AuthInfo }>) {
			const auth = ctx.meta.auth;
			const readsAll = holds(auth, "ai:manage");
			return logDetail(tenantSql(ctx), ctx.params.id, { userId: auth?.userId, readsAll });
		}
	}
};
