// Request bodies: JSON only, size-limited (after decompression), and nesting bounded before anything else touches
// them. V8 parses a 100,000-deep array fine, but every later step (validation, cache keys, the serializer that
// sends params to another node) recurses and overflows the stack: a 500 for the client, a crash risk for us.
export const MAX_JSON_DEPTH = 64;

// Nesting of raw JSON text, counted without parsing (brackets inside strings do not count); stops at the bound.
export function jsonTextTooDeep(buf: Uint8Array, max = MAX_JSON_DEPTH): boolean {
	let depth = 0;
	let inString = false;
	for (let i = 0; i < buf.length; i++) {
		const c = buf[i];
		if (inString) {
			if (c === 0x5c)
				i++; // backslash: skip the escaped character
			else if (c === 0x22) inString = false;
		} else if (c === 0x22) inString = true;
		else if (c === 0x5b || c === 0x7b) {
			if (++depth > max) return true;
		} else if (c === 0x5d || c === 0x7d) depth--;
	}
	return false;
}

// The same bound for values that arrive already parsed (socket.io messages); iterative, so it cannot overflow.
export function valueTooDeep(value: unknown, max = MAX_JSON_DEPTH): boolean {
	const stack: [unknown, number][] = [[value, 0]];
	while (stack.length) {
		const [v, depth] = stack.pop()!;
		if (v === null || typeof v !== "object") continue;
		if (depth + 1 > max) return true;
		for (const child of Object.values(v as object)) stack.push([child, depth + 1]);
	}
	return false;
}

// Mapped to a 400 JSON_TOO_DEEP by errors.ts (over REST through the body parser's `type`, over the socket directly).
export const jsonTooDeepError = () =>
	Object.assign(new Error(`request body nests deeper than ${MAX_JSON_DEPTH} levels`), { type: "entity.too.deep" });

// bodyParsers for a moleculer-web route: JSON (with the depth check run on the raw bytes) and nothing else.
export function jsonBodyParsers(limit: string) {
	return {
		json: {
			strict: true,
			limit,
			verify(_req: unknown, _res: unknown, buf: Buffer) {
				if (jsonTextTooDeep(buf)) throw jsonTooDeepError();
			}
		},
		urlencoded: false
	};
}
