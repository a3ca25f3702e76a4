// The built-in offline embedder: lexical feature hashing, not a neural model. It needs no weights and no network,
// and finds texts that share words, identifiers and word fragments; it does not know synonyms or meaning.
//
// A text becomes three feature groups, each hashed into the same `dimensions` buckets:
//   words     — lower-cased words (stop words dropped unless there is nothing else), a crude stem beside each
//               ("indexes" → index), identifiers also give their parts ("parseHttpRequest" → parse, http, request)
//   bigrams   — consecutive word pairs, for phrases
//   chars     — character 3- and 4-grams of each word padded with spaces, for spelling variants and inflections
// Each feature adds ±(1 + ln tf) to bucket hash % dimensions, the sign from another bit of the hash (signed hashing:
// collisions cancel on average instead of piling up). Each group is L2-normalised and weighted (words 0.6, chars
// 0.45, bigrams 0.35) so long words' many n-grams do not drown the words, then the sum is L2-normalised.
// Deterministic: the same text gives the same vector on every machine. An empty text (no words) gives the zero
// vector, which has no direction: callers should not index it.
export const LOCAL_EMBEDDER = { name: "local-hash", dimensions: 384 } as const;

const WEIGHTS = { words: 0.6, chars: 0.45, bigrams: 0.35 };

const STOP_WORDS = new Set(
	(
		"a an and are as at be but by for from has have he her his i if in into is it its me my no not of on or our " +
		"she so that the their them then there these they this to was we were what when which who will with you your"
	).split(" ")
);

// Per group, a different FNV-1a offset basis so the same string in two groups lands in unrelated buckets.
const SEED = { words: 0x811c9dc5, bigrams: 0x01000193 ^ 0x9e3779b9, chars: 0x85ebca6b };

function fnv1a(s: string, from: number, to: number, seed: number): number {
	let h = seed >>> 0;
	for (let i = from; i < to; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
	return fmix(h);
}

// murmur3's fmix32: the low bits used for the bucket then depend on every character.
function fmix(h: number): number {
	h ^= h >>> 16;
	h = Math.imul(h, 0x85ebca6b);
	h ^= h >>> 13;
	h = Math.imul(h, 0xc2b2ae35);
	h ^= h >>> 16;
	return h >>> 0;
}

// The distinct feature hashes of one group and how often each occurred: an open-addressing table (cheaper than a
// Map or a sort for the few thousand features of a chunk).
class Hashes {
	keys = new Uint32Array(1024);
	counts = new Uint32Array(1024);
	slots: number[] = []; // occupied slots, in insertion order
	length = 0; // occurrences pushed
	push(h: number) {
		this.length++;
		if (this.slots.length * 2 >= this.keys.length) this.grow();
		const mask = this.keys.length - 1;
		let i = h & mask;
		while (this.counts[i] && this.keys[i] !== h) i = (i + 1) & mask;
		if (!this.counts[i]++) {
			this.keys[i] = h;
			this.slots.push(i);
		}
	}
	private grow() {
		const { keys, counts, slots } = this;
		this.keys = new Uint32Array(keys.length * 2);
		this.counts = new Uint32Array(keys.length * 2);
		this.slots = [];
		const mask = this.keys.length - 1;
		for (const old of slots) {
			let i = keys[old] & mask;
			while (this.counts[i]) i = (i + 1) & mask;
			this.keys[i] = keys[old];
			this.counts[i] = counts[old];
			this.slots.push(i);
		}
	}
}

// "parseHTTPRequest_v2" → ["parse", "http", "request", "v2"]; [] when the word has no inner parts.
function identifierParts(word: string): string[] {
	// Most words have no inner capital or underscore: nothing to split, and no regex run for them.
	if (!word.includes("_") && !/[A-Z]/.test(word.slice(1))) return [];
	const parts = word
		.replace(/([a-z0-9])([A-Z])/g, "$1 $2")
		.replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
		.split(/[\s_]+/)
		.filter(p => p.length > 1);
	return parts.length > 1 ? parts.map(p => p.toLowerCase()) : [];
}

const WORD = /[\p{L}\p{N}_]+/gu;

// A crude English stem ("indexing", "indexes" → "index") added beside the word: inflections meet without a
// dictionary. Only for words long enough that the rest still says something.
function stem(word: string): string {
	if (word.length < 5) return word;
	const m = /^(.{3,}?)(?:ing|ed|es|ly|(?<!s)s)$/.exec(word);
	return m ? m[1] : word;
}

function features(text: string, keepStopWords = false): { words: Hashes; bigrams: Hashes; chars: Hashes } {
	const words = new Hashes();
	const bigrams = new Hashes();
	const chars = new Hashes();
	let previous: string | undefined;
	for (const match of text.normalize("NFKC").matchAll(WORD)) {
		const raw = match[0];
		const word = raw.toLowerCase();
		if (!keepStopWords && STOP_WORDS.has(word)) {
			previous = undefined;
			continue;
		}
		words.push(fnv1a(word, 0, word.length, SEED.words));
		const stemmed = stem(word);
		if (stemmed !== word) words.push(fnv1a(stemmed, 0, stemmed.length, SEED.words));
		for (const part of identifierParts(raw)) words.push(fnv1a(part, 0, part.length, SEED.words));
		if (previous !== undefined) {
			const pair = `${previous} ${word}`;
			bigrams.push(fnv1a(pair, 0, pair.length, SEED.bigrams));
		}
		previous = word;
		// The 4-gram's FNV state continues its 3-gram's: one pass per start position.
		const padded = ` ${word} `;
		for (let i = 0; i + 3 <= padded.length; i++) {
			let h = Math.imul(SEED.chars ^ padded.charCodeAt(i), 0x01000193);
			h = Math.imul(h ^ padded.charCodeAt(i + 1), 0x01000193);
			h = Math.imul(h ^ padded.charCodeAt(i + 2), 0x01000193);
			chars.push(fmix(h));
			if (i + 4 <= padded.length)
				chars.push(fmix(Math.imul(h ^ padded.charCodeAt(i + 3), 0x01000193) ^ 0x5bd1e995));
		}
	}
	// A text of stop words only ("to be or not to be") still gets a vector from them.
	if (!words.length && !keepStopWords) return features(text, true);
	return { words, bigrams, chars };
}

function accumulate(into: Float64Array, hashes: Hashes, weight: number, dimensions: number) {
	if (!hashes.length) return;
	const group = new Float64Array(dimensions);
	for (const slot of hashes.slots) {
		const h = hashes.keys[slot];
		group[h % dimensions] += (h & 0x80000000 ? -1 : 1) * (1 + Math.log(hashes.counts[slot]));
	}
	let norm = 0;
	for (let i = 0; i < dimensions; i++) norm += group[i] * group[i];
	if (!norm) return;
	const scale = weight / Math.sqrt(norm);
	for (let i = 0; i < dimensions; i++) into[i] += group[i] * scale;
}

export function embedLocal(texts: string[], dimensions: number = LOCAL_EMBEDDER.dimensions): number[][] {
	if (!Number.isInteger(dimensions) || dimensions < 2 || dimensions > 16000)
		throw new RangeError(`dimensions must be an integer from 2 to 16000, got ${dimensions}`);
	return texts.map(text => {
		const f = features(text ?? "");
		const v = new Float64Array(dimensions);
		accumulate(v, f.words, WEIGHTS.words, dimensions);
		accumulate(v, f.chars, WEIGHTS.chars, dimensions);
		accumulate(v, f.bigrams, WEIGHTS.bigrams, dimensions);
		let norm = 0;
		for (let i = 0; i < dimensions; i++) norm += v[i] * v[i];
		const scale = norm ? 1 / Math.sqrt(norm) : 0;
		const out = new Array<number>(dimensions);
		for (let i = 0; i < dimensions; i++) out[i] = v[i] * scale;
		return out;
	});
}
