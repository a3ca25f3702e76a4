// The audit trail: one entry per operation, written in the operation's transaction, chained per organization by
// SHA-256 over the previous hash and the entry. verify() walks the chain and names the first entry that was
// altered or removed.
import crypto from "crypto";
import type { Queryable } from "../../lib/db";

export interface AuditEntry {
	actorType: "user" | "service" | "system";
	actorId?: string | null;
	action: string;
	target?: string | null;
	outcome: "success" | "denied" | "error";
	requestId?: string | null;
	details?: Record<string, unknown>;
}

// Key order must not change the hash (jsonb reorders keys).
function canonical(v: unknown): string {
	if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
	if (v && typeof v === "object" && !(v instanceof Date))
		return `{${Object.keys(v)
			.sort()
			.map(k => `${JSON.stringify(k)}:${canonical((v as any)[k])}`)
			.join(",")}}`;
	return JSON.stringify(v instanceof Date ? v.toISOString() : v ?? null);
}

function entryHash(prevHash: string, row: Record<string, unknown>): string {
	return crypto
		.createHash("sha256")
		.update(prevHash + "\n")
		.update(
			canonical([row.organization_id, Number(row.seq), row.actor_type, row.actor_id, row.action, row.target, row.outcome, row.request_id, row.details, new Date(row.created_at as any).toISOString()])
		)
		.digest("hex");
}

// Appends in tx; the caller holds the organization's vault row locked (FOR UPDATE), which orders the chain.
export async function appendAudit(tx: Queryable, organizationId: string, head: { audit_seq: number; audit_hash: string }, e: AuditEntry) {
	const row = {
		organization_id: organizationId,
		seq: Number(head.audit_seq) + 1,
		actor_type: e.actorType,
		actor_id: e.actorId ?? null,
		action: e.action,
		target: e.target ?? null,
		outcome: e.outcome,
		request_id: e.requestId ?? null,
		details: e.details ?? {},
		created_at: new Date()
	};
	const hash = entryHash(head.audit_hash, row);
	await tx.query(
		`INSERT INTO secret_audit_logs (organization_id, seq, actor_type, actor_id, action, target, outcome, request_id, details, created_at, prev_hash, hash)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		[row.organization_id, row.seq, row.actor_type, row.actor_id, row.action, row.target, row.outcome, row.request_id, JSON.stringify(row.details), row.created_at, head.audit_hash, hash]
	);
	await tx.query("UPDATE vault_configurations SET audit_seq = $2, audit_hash = $3 WHERE organization_id = $1", [organizationId, row.seq, hash]);
	head.audit_seq = row.seq;
	head.audit_hash = hash;
}

export interface VerifyResult {
	ok: boolean;
	entries: number;
	firstBad?: { seq: number; problem: "altered" | "removed" };
}

export async function verifyAudit(q: Queryable, organizationId: string): Promise<VerifyResult> {
	const head = (await q.query("SELECT audit_seq, audit_hash FROM vault_configurations WHERE organization_id = $1", [organizationId])).rows[0];
	let prevHash = "";
	let expected = 1;
	let count = 0;
	const PAGE = 1000;
	for (;;) {
		const { rows } = await q.query("SELECT * FROM secret_audit_logs WHERE organization_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3", [organizationId, expected, PAGE]);
		for (const row of rows) {
			const seq = Number(row.seq);
			if (seq !== expected) return { ok: false, entries: count, firstBad: { seq: expected, problem: "removed" } };
			if (row.prev_hash !== prevHash || entryHash(prevHash, row) !== row.hash) return { ok: false, entries: count, firstBad: { seq, problem: "altered" } };
			prevHash = row.hash;
			expected++;
			count++;
		}
		if (rows.length < PAGE) break;
	}
	// Entries removed from the end leave the chain's recorded head pointing past the last row.
	if (head && Number(head.audit_seq) !== count) return { ok: false, entries: count, firstBad: { seq: count + 1, problem: "removed" } };
	if (head && head.audit_hash !== prevHash) return { ok: false, entries: count, firstBad: { seq: count, problem: "altered" } };
	return { ok: true, entries: count };
}
