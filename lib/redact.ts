// Secret values kept out of what the platform stores, returns or publishes. Text that comes from outside (an
// upstream's error message echoes the key it was sent) goes through `redact` with the values the request used
// before it becomes a platform error, a log row or an event.

export const REDACTED = "[redacted]";

// Shorter values would cut ordinary words out of messages; no credential is that short.
const MIN_SECRET_LENGTH = 4;

// Looks like a provider key even when we do not know its value (sk-…, rk-…, pk_…).
const KEY_LIKE = /\b(sk|cide|rk|pk)[-_][A-Za-z0-9_-]{6,}/g;

// Removes every known secret value, also in its URL- and JSON-escaped spellings, and anything key-like.
export function redact(text: string, secrets: Iterable<string | undefined | null> = []): string {
	let out = text;
	const values = new Set<string>();
	for (const s of secrets) {
		if (!s || s.length < MIN_SECRET_LENGTH) continue;
		values.add(s);
		values.add(encodeURIComponent(s));
		values.add(JSON.stringify(s).slice(1, -1));
	}
	// Longest first, so a value that contains another is cut whole.
	for (const v of [...values].sort((a, b) => b.length - a.length)) out = out.split(v).join(REDACTED);
	return out.replace(KEY_LIKE, REDACTED);
}

// Header names that carry credentials: their values come from secrets, never typed into a form or a table.
const CREDENTIAL_HEADER = /^cookie$|auth|api[-_]?key|token|secret|passw|credential/i;
export function isCredentialHeader(name: string): boolean {
	return CREDENTIAL_HEADER.test(name.trim());
}
