// Cache keys for every cached action. Moleculer's default generator joins the key values with "|" without escaping,
// so two different requests can share one key ({a: 1, b: 2} and {"a|1|b": 2}) and one caller's answer is served to
// another. Here each value is JSON inside its own brackets ([] = absent), which no other set of values can spell.
// Keys stay readable (action, then values, the organization first) and long ones end in a digest.
import crypto from "crypto";

const MAX_READABLE = 200;

// "#a.b" reads ctx.meta, "@a" ctx.headers, anything else ctx.params (dotted paths, as Moleculer's generator).
function valueOf(key: string, ctx: any): unknown {
	const [source, path] = key.startsWith("#")
		? [ctx?.meta, key.slice(1)]
		: key.startsWith("@")
			? [ctx?.headers, key.slice(1)]
			: [ctx?.params, key];
	let v = source;
	for (const part of path.split(".")) v = v == null ? undefined : v[part];
	return v;
}

export function cacheKeygen(action: { name: string }, opts: { keys?: string[] } | undefined, ctx: any): string {
	const values = opts?.keys ? opts.keys.map(k => valueOf(k, ctx)) : [ctx?.params];
	const text = JSON.stringify(values.map(v => (v === undefined ? [] : [v])));
	if (text.length <= MAX_READABLE) return `${action.name}:${text}`;
	const digest = crypto.createHash("sha256").update(text).digest("base64url");
	return `${action.name}:${text.slice(0, MAX_READABLE - 50)}…${digest}`;
}
