// CSV (RFC 4180) for exports: every field quoted when it holds a comma, quote or line break; objects as JSON. A
// field starting with = + - @ gets a leading apostrophe so spreadsheets show it rather than run it as a formula.
export function csvField(value: unknown): string {
	if (value === null || value === undefined) return "";
	let s =
		value instanceof Date ? value.toISOString() : typeof value === "object" ? JSON.stringify(value) : String(value);
	if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
	return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(columns: string[], rows: Record<string, unknown>[]): string {
	const lines = [columns.join(",")];
	for (const row of rows) lines.push(columns.map(c => csvField(row[c])).join(","));
	return lines.join("\r\n") + "\r\n";
}

// Moleculer-web sends a string answer with these as its content type and headers: a file download.
export function asCsvDownload(meta: Record<string, unknown>, filename: string) {
	meta.$responseType = "text/csv; charset=utf-8";
	meta.$responseHeaders = { "Content-Disposition": `attachment; filename="${filename}"` };
}
