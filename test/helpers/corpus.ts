// Generated corpora for bench/embeddings.ts, bench/embeddings-hnsw.ts and test/embeddings/recall.spec.ts, seeded (the same corpus on every
// run, so recall does not depend on the machine's load).
// - "topics": documents drawn from topics, as real text is: each topic has its own vocabulary (200 words, some shared
//   with neighbouring topics) and a document takes most of its words from its topic, the rest from a Zipf-like
//   general vocabulary. A query is a part of one document, a few of its words reordered and one replaced by another
//   word of its topic, as a user's paraphrase of what they look for. Vectors of the built-in embedder then have the
//   cluster structure that neural embeddings have.
// - "random": every word Zipf-drawn from one vocabulary of 20,000, queries 5 random words: near-orthogonal vectors,
//   nearest neighbours barely nearer than the rest, the worst case for HNSW.
export type CorpusKind = "topics" | "random";

export interface Corpus {
	// Document i's text (documents are made in order: a query paraphrases one made already).
	documents: (i: number) => string;
	queries: (n: number) => string[];
	// A metadata value in 0..99 for document i, independent of its topic (a 1% filter picks from every topic).
	bucket: (i: number) => number;
}

function random(seed: number) {
	return () => {
		seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
		return seed / 2 ** 32;
	};
}

export function corpus(kind: CorpusKind, opts: { size: number; seed?: number; words?: number }): Corpus {
	const rand = random(opts.seed ?? 7);
	const words = opts.words ?? 20;
	const general = () => `w${Math.floor(20_000 * rand() ** 3)}`;
	if (kind === "random") {
		const sentence = (n: number) => Array.from({ length: n }, general).join(" ");
		return {
			documents: () => sentence(words),
			queries: n => Array.from({ length: n }, () => sentence(5)),
			bucket: i => i % 100
		};
	}
	// About one topic per 250 documents, at least 8.
	const topics = Math.max(8, Math.round(opts.size / 250));
	// Topic t's words: 200 of its own, ranked; neighbouring topics share the top of each other's lists.
	const topicWord = (t: number) => {
		const r = Math.floor(200 * rand() ** 2);
		const own = rand() < 0.85 ? t : (t + 1 + Math.floor(rand() * 3)) % topics;
		return `t${own}x${r}`;
	};
	const doc = (i: number) => {
		const t = i % topics;
		return Array.from({ length: words }, () => (rand() < 0.7 ? topicWord(t) : general()));
	};
	// The documents are generated in order and kept for the queries (a query paraphrases a document).
	const made: string[][] = [];
	return {
		bucket: i => Math.floor(i / topics) % 100,
		documents: i => {
			const d = doc(i);
			made[i] = d;
			return d.join(" ");
		},
		queries: n =>
			Array.from({ length: n }, () => {
				const i = Math.floor(rand() * made.length);
				const d = made[i] ?? doc(i);
				const start = Math.floor(rand() * (d.length - 6));
				const part = d.slice(start, start + 6);
				part[Math.floor(rand() * part.length)] = topicWord(i % topics);
				// Two neighbouring words swapped: the same words, in another order.
				const j = Math.floor(rand() * (part.length - 1));
				[part[j], part[j + 1]] = [part[j + 1], part[j]];
				return part.join(" ");
			})
	};
}
