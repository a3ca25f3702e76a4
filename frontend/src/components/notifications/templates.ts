// A sample event for a template's preview: each field the template reads ({{ name }}, {% if name %}), set to its own
// name so the preview shows where it lands. `type`, `count` and `event` are the renderer's own.
const OWN = new Set(["type", "count", "event", "if", "else", "endif", "for", "endfor", "unless", "true", "false"]);

export function sampleFor(text: string): Record<string, string> {
	const out: Record<string, string> = {};
	for (const m of text.matchAll(/\{\{-?\s*([A-Za-z_][\w]*)|\{%-?\s*(?:if|unless|elsif)\s+([A-Za-z_][\w]*)/g)) {
		const name = m[1] ?? m[2];
		if (!OWN.has(name)) out[name] = name;
	}
	return out;
}
