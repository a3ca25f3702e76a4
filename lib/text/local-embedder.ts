// PLACEHOLDER until helper "text"'s lib/text/local-embedder.ts is merged (same signatures): feature hashing of
// lower-cased words into `dimensions` signed buckets, L2-normalised.
export const LOCAL_EMBEDDER = { name: "local-hash", dimensions: 384 };

function hash(s: string): number {
	let h = 0x811c9dc5;
	for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
	return h >>> 0;
}

export function embedLocal(texts: string[], dimensions = LOCAL_EMBEDDER.dimensions): number[][] {
	return texts.map(text => {
		const v = new Array<number>(dimensions).fill(0);
		for (const word of text.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? []) {
			const h = hash(word);
			v[h % dimensions] += h & 0x80000000 ? -1 : 1;
		}
		const norm = Math.hypot(...v) || 1;
		return v.map(x => x / norm);
	});
}
