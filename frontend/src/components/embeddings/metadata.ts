// "team=search, year=2026" ⇄ { team: "search", year: 2026 }: the flat metadata documents carry and search filters.
export type Flat = Record<string, string | number | boolean>;

const KEY = /^[A-Za-z_][\w.-]{0,63}$/;

function value(raw: string): string | number | boolean {
	if (raw === "true" || raw === "false") return raw === "true";
	return /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
}

export function parseMetadata(text: string): { value?: Flat; error?: string } {
	const out: Flat = {};
	for (const part of text
		.split(",")
		.map(p => p.trim())
		.filter(Boolean)) {
		const eq = part.indexOf("=");
		const key = eq > 0 ? part.slice(0, eq).trim() : "";
		if (!KEY.test(key)) return { error: `“${part}” is not key=value (a key is letters, digits, _ . -).` };
		out[key] = value(part.slice(eq + 1).trim());
	}
	return Object.keys(out).length ? { value: out } : {};
}

// A search filter: "team=search|infra" means team is one of the values.
export function parseFilter(text: string): { value?: Record<string, unknown>; error?: string } {
	const parsed = parseMetadata(text);
	if (!parsed.value) return parsed;
	const filter: Record<string, unknown> = {};
	for (const [k, v] of Object.entries(parsed.value))
		filter[k] = typeof v === "string" && v.includes("|") ? { in: v.split("|").map(s => value(s.trim())) } : v;
	return { value: filter };
}
