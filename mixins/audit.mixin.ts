// AuditMixin: a hash-chained audit log per organization (lib/audit-chain.ts). `await this.appendAudit(t, entry)`
// writes an entry in the caller's transaction, after the organization's chain head (its own table, locked by the
// append, which orders concurrent writers); the `audit` and `audit.verify` actions list and check the chain.
// `this.auditedTransaction(ctx, action, target, op)` runs op in a transaction with the entry of its outcome; an op
// that throws AuditDenied is refused (403) after its "denied" entry is written in a transaction of its own.
// Tables: `<log>` (organization_id, seq, actor_type, actor_id, action, target, outcome, request_id, details,
// created_at, prev_hash, hash) and `<heads>` (organization_id, seq, hash), created by the module's migration.
import type { Context } from "moleculer";
import { forbidden } from "../lib/errors";
import type { ServiceSchema } from "../lib/schema";
import { AuditEntry, AuditRow, ChainVerifier, entryHash, VerifyResult } from "../lib/audit-chain";
import { organizationSql, TenantSql, tenantSql } from "../lib/db/tenant";
import { listOf, named } from "../lib/response";
import { likeContains } from "../lib/db/pg-adapter";
import { where } from "../lib/db/tenant";
import { asCsvDownload, toCsv } from "../lib/csv";

// What `audit` and `audit.verify` answer (OpenAPI, the UI's generated types).
const AUDIT_ENTRY = named("AuditEntry", {
	seq: "number|integer",
	actor_type: { type: "enum", values: ["user", "service", "system"] },
	actor_id: "string|nullable",
	action: "string",
	target: "string|nullable",
	outcome: { type: "enum", values: ["success", "denied", "error"] },
	request_id: "string|nullable",
	details: "record",
	created_at: "date"
});
const AUDIT_VERIFICATION = named("AuditVerification", {
	ok: "boolean",
	entries: "number|integer",
	firstBad: {
		type: "object",
		optional: true,
		props: { seq: "number|integer", problem: { type: "enum", values: ["altered", "removed"] } }
	}
});

export type { AuditEntry } from "../lib/audit-chain";

// Filters shared by the list and its CSV export.
const FILTERS = {
	action: { type: "string", max: 100, optional: true },
	outcome: { type: "enum", values: ["success", "denied", "error"], optional: true },
	actor: { type: "string", max: 200, optional: true },
	search: { type: "string", max: 200, optional: true },
	from: { type: "date", convert: true, optional: true },
	to: { type: "date", convert: true, optional: true }
};
type Filters = { action?: string; outcome?: string; actor?: string; search?: string; from?: Date; to?: Date };
const COLUMNS = ["seq", "actor_type", "actor_id", "action", "target", "outcome", "request_id", "details", "created_at"];
const EXPORT_MAX = 100_000;

// The WHERE clause of a filtered read of the log ("search" looks in the target and the details).
function filtered(args: unknown[], f: Filters, before?: number): string {
	return where(
		args,
		["organization_id = $org", null],
		["seq < ?", before],
		["action = ?", f.action || undefined],
		["outcome = ?", f.outcome],
		["actor_id = ?", f.actor || undefined],
		["(target ILIKE ? OR details::text ILIKE ?)", f.search ? likeContains(f.search) : undefined],
		["created_at >= ?", f.from],
		["created_at < ?", f.to]
	);
}

export interface AuditOptions {
	log: string;
	heads: string;
	// Who may read and verify the log.
	permission: string;
}

// A refusal worth recording: the audited operation is denied, its entry says why, the caller gets a 403.
export class AuditDenied extends Error {}

export interface AuditedOptions<T> {
	// An internal call names its organization and actor and ignores whatever principal its caller's meta claims.
	internal?: { organizationId: string; actor: Pick<AuditEntry, "actorType" | "actorId"> };
	// What the success entry records of the result.
	details?: (result: T) => Record<string, unknown> | undefined;
}

export interface AuditMethods {
	appendAudit(t: TenantSql, e: AuditEntry): Promise<void>;
	verifyAudit(t: TenantSql): Promise<VerifyResult>;
	auditedTransaction<T>(
		ctx: Context,
		action: string,
		target: string | null,
		op: (t: TenantSql) => Promise<T>,
		opts?: AuditedOptions<T>
	): Promise<T>;
}

const IDENT = /^[a-z_][a-z0-9_]*$/;
const PAGE = 1000;

export function AuditMixin(opts: AuditOptions): Partial<ServiceSchema> {
	for (const t of [opts.log, opts.heads])
		if (!IDENT.test(t)) throw new Error(`AuditMixin: "${t}" is not a table name`);
	const { log, heads } = opts;

	async function appendAudit(t: TenantSql, e: AuditEntry): Promise<void> {
		// Creates or locks the head: the next writer of this organization's chain waits for this transaction.
		const head = (await t.one<{ seq: string; hash: string }>(
			`INSERT INTO ${heads} (organization_id) VALUES ($org)
			 ON CONFLICT (organization_id) DO UPDATE SET seq = ${heads}.seq RETURNING seq, hash`
		))!;
		const row: AuditRow = {
			organization_id: t.organizationId,
			seq: Number(head.seq) + 1,
			actor_type: e.actorType,
			actor_id: e.actorId ?? null,
			action: e.action,
			target: e.target ?? null,
			outcome: e.outcome,
			request_id: e.requestId ?? null,
			details: e.details ?? {},
			created_at: new Date()
		};
		const hash = entryHash(head.hash, row);
		await t.query(
			`INSERT INTO ${log} (organization_id, seq, actor_type, actor_id, action, target, outcome, request_id, details,
			 created_at, prev_hash, hash) VALUES ($org, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			[
				row.seq,
				row.actor_type,
				row.actor_id,
				row.action,
				row.target,
				row.outcome,
				row.request_id,
				JSON.stringify(row.details),
				row.created_at,
				head.hash,
				hash
			]
		);
		await t.query(`UPDATE ${heads} SET seq = $1, hash = $2 WHERE organization_id = $org`, [row.seq, hash]);
	}

	async function verifyAudit(t: TenantSql): Promise<VerifyResult> {
		const head = await t.one(`SELECT seq, hash FROM ${heads} WHERE organization_id = $org`);
		const chain = new ChainVerifier();
		for (;;) {
			const rows = await t.rows(
				`SELECT * FROM ${log} WHERE organization_id = $org AND seq >= $1 ORDER BY seq LIMIT $2`,
				[chain.expected, PAGE]
			);
			if (!chain.add(rows) || rows.length < PAGE) break;
		}
		return chain.result(head);
	}

	// If the entry cannot be written, the operation fails with it. The actor is the caller's user, or the service
	// acting without one (a job's principal).
	async function auditedTransaction<T>(
		ctx: Context,
		action: string,
		target: string | null,
		op: (t: TenantSql) => Promise<T>,
		opts: AuditedOptions<T> = {}
	): Promise<T> {
		const { internal } = opts;
		const scope = internal ? organizationSql(internal.organizationId) : tenantSql(ctx);
		const auth = scope.auth;
		const byService = auth?.kind === "service";
		const actor = internal?.actor ?? {
			actorType: byService ? ("service" as const) : ("user" as const),
			actorId: (byService ? auth!.service : auth?.userId) ?? null
		};
		const entry = (outcome: AuditEntry["outcome"], details?: Record<string, unknown>): AuditEntry => ({
			...actor,
			action,
			target,
			outcome,
			requestId: ctx.requestID,
			details
		});
		try {
			return await scope.transaction(async t => {
				const result = await op(t);
				await appendAudit(t, entry("success", opts.details?.(result)));
				return result;
			});
		} catch (err) {
			if (!(err instanceof AuditDenied)) throw err;
			await scope.transaction(async t => appendAudit(t, entry("denied", { reason: err.message })));
			throw forbidden(err.message);
		}
	}

	return {
		actions: {
			audit: {
				rest: "GET /audit",
				permission: opts.permission,
				response: listOf(AUDIT_ENTRY),
				params: {
					limit: { type: "number", integer: true, min: 1, max: 500, default: 100, convert: true },
					before: { type: "number", integer: true, min: 1, optional: true, convert: true },
					...FILTERS
				},
				async handler(ctx: Context<Filters & { limit: number; before?: number }>) {
					const args: unknown[] = [];
					const cond = filtered(args, ctx.params, ctx.params.before);
					return tenantSql(ctx).rows(
						`SELECT ${COLUMNS.join(", ")} FROM ${log} WHERE ${cond} ORDER BY seq DESC LIMIT ${ctx.params.limit}`,
						args
					);
				}
			},

			// The filtered log as a CSV file, oldest first (at most EXPORT_MAX entries).
			"audit.export": {
				rest: "GET /audit/export",
				permission: opts.permission,
				response: "string",
				responseType: "text/csv",
				params: FILTERS,
				async handler(ctx: Context<Filters>) {
					const args: unknown[] = [];
					const rows = await tenantSql(ctx).rows(
						`SELECT ${COLUMNS.join(", ")} FROM ${log} WHERE ${filtered(args, ctx.params)} ORDER BY seq LIMIT ${EXPORT_MAX}`,
						args
					);
					asCsvDownload(ctx.meta as Record<string, unknown>, `${log}.csv`);
					return toCsv(COLUMNS, rows);
				}
			},

			"audit.verify": {
				rest: "POST /audit/verify",
				permission: opts.permission,
				response: AUDIT_VERIFICATION,
				handler(ctx: Context) {
					return verifyAudit(tenantSql(ctx));
				}
			}
		},
		methods: { appendAudit, verifyAudit, auditedTransaction }
	};
}
