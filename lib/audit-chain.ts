// The hash chain of an audit log: each entry's hash covers the previous hash and the entry, so an altered or removed
// entry breaks every hash after it. Pure functions; mixins/audit.mixin.ts stores and walks the chain.
import crypto from "crypto";
import canonicalize from "canonicalize";

export interface AuditEntry {
	actorType: "user" | "service" | "system";
	actorId?: string | null;
	action: string;
	target?: string | null;
	outcome: "success" | "denied" | "error";
	requestId?: string | null;
	details?: Record<string, unknown>;
}

// A stored entry, as its columns are named.
export interface AuditRow {
	organization_id: string;
	seq: number | string;
	actor_type: string;
	actor_id: string | null;
	action: string;
	target: string | null;
	outcome: string;
	request_id: string | null;
	details: unknown;
	created_at: Date | string;
}

// The hash input is the RFC 8785 canonical JSON (key order must not matter: jsonb reorders keys) of the entry as the
// database gives it back: details go through JSON first, as they are stored, so a value JSON drops or turns into null
// (undefined, NaN) hashes as it will be read. For every stored row this is the same text the hand-written
// serializer produced before, so chains written before still verify (test/platform/module-kit.spec.ts).
const asStored = (details: unknown) => (details === undefined ? null : JSON.parse(JSON.stringify(details)));

export function entryHash(prevHash: string, row: AuditRow): string {
	const fields = [row.organization_id, Number(row.seq), row.actor_type, row.actor_id, row.action, row.target];
	const rest = [row.outcome, row.request_id, asStored(row.details), new Date(row.created_at).toISOString()];
	return crypto
		.createHash("sha256")
		.update(prevHash + "\n")
		.update(canonicalize([...fields, ...rest])!)
		.digest("hex");
}

export interface VerifyResult {
	ok: boolean;
	entries: number;
	firstBad?: { seq: number; problem: "altered" | "removed" };
}

// Walks rows in seq order (page by page: `next` continues where the last call stopped, -1 when done).
export class ChainVerifier {
	private prevHash = "";
	expected = 1;
	private count = 0;
	private bad?: VerifyResult["firstBad"];

	add(rows: (AuditRow & { prev_hash: string; hash: string })[]): boolean {
		for (const row of rows) {
			if (this.bad) return false;
			const seq = Number(row.seq);
			if (seq !== this.expected) this.bad = { seq: this.expected, problem: "removed" };
			else if (row.prev_hash !== this.prevHash || entryHash(this.prevHash, row) !== row.hash)
				this.bad = { seq, problem: "altered" };
			else {
				this.prevHash = row.hash;
				this.expected++;
				this.count++;
			}
		}
		return !this.bad;
	}

	// The recorded head must point at the last entry: entries removed from the end leave it pointing past it.
	result(head?: { seq: number | string; hash: string }): VerifyResult {
		const entries = this.count;
		if (this.bad) return { ok: false, entries, firstBad: this.bad };
		if (head && Number(head.seq) !== entries)
			return { ok: false, entries, firstBad: { seq: entries + 1, problem: "removed" } };
		if (head && head.hash !== this.prevHash)
			return { ok: false, entries, firstBad: { seq: entries, problem: "altered" } };
		return { ok: true, entries };
	}
}
