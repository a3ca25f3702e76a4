// Chunking for embeddings: prose by paragraphs and sentences, Markdown by headings (code fences whole where they
// fit), source code by functions, classes and methods. A unit too big is opened (code) or split by lines, then by
// words; neighbouring chunks overlap by up to `overlapTokens`. Sizes are in cl100k_base tokens (the tokenizer of
// OpenAI's embedding models), and every chunk is input.slice(start, end).
import type * as Cl100k from "gpt-tokenizer/cjs/encoding/cl100k_base";
import { CodeStructure, type CodeUnit } from "./code-units";
import { FALLBACK_CODE_RULES, resolveLanguage, type LanguageRules } from "./languages";
import { markdownSections } from "./markdown";

export type ChunkKind = "prose" | "markdown" | "code";
export interface ChunkOptions {
	kind?: ChunkKind;
	// "typescript", "python", "go", … or a file name/extension to guess from.
	language?: string;
	path?: string;
	maxTokens?: number; // default 256
	overlapTokens?: number; // default 32, at most half of maxTokens
}
export interface Chunk {
	index: number;
	text: string;
	tokens: number;
	start: number;
	end: number;
	heading?: string; // markdown heading path "A > B"
	symbol?: string; // code: function/class name ("Class.method"; "a, b" when small units share a chunk)
}

// A span of the input no bigger than the budget, with what it belongs to.
interface Piece {
	start: number;
	end: number;
	tokens: number;
	heading?: string;
	symbol?: string;
}

// Loaded on the first count: its merge table is about 15 MB of heap and 70 MB of RSS while it loads, which every
// process importing the embeddings service paid at start even when it never chunks (bench/README.md, "Memory").
let cl100k: typeof Cl100k | undefined;

export function countTokens(text: string): number {
	if (!text) return 0;
	cl100k ??= require("gpt-tokenizer/cjs/encoding/cl100k_base") as typeof Cl100k;
	return cl100k.countTokens(text);
}

export function chunkText(text: string, options: ChunkOptions = {}): Chunk[] {
	const maxTokens = Math.max(8, Math.floor(options.maxTokens ?? 256));
	const overlap = Math.max(0, Math.min(Math.floor(options.overlapTokens ?? 32), Math.floor(maxTokens / 2)));
	if (!text.trim()) return [];
	const guessed = resolveLanguage(options.language, options.path);
	const kind = options.kind ?? guessed.kind;
	// Pieces leave room for the overlap that the next step puts in front of them.
	const splitter = new Splitter(text, maxTokens - overlap);
	let pieces: Piece[];
	if (kind === "code") pieces = splitter.code(guessed.rules ?? FALLBACK_CODE_RULES);
	else if (kind === "markdown") pieces = splitter.markdown();
	else pieces = splitter.prose(0, text.length, {});
	return withOverlap(text, pack(text, pieces, maxTokens - overlap, kind), maxTokens, overlap, kind);
}

class Splitter {
	constructor(
		private text: string,
		private budget: number
	) {}

	private piece(start: number, end: number, meta: Meta): Piece[] {
		[start, end] = trim(this.text, start, end);
		// Far longer than any budget-sized text: not worth tokenizing to learn it is too big. A text that would have
		// fitted only gets split and packed back together.
		if (start >= end || end - start > this.budget * 12) return [];
		const tokens = countTokens(this.text.slice(start, end));
		return tokens <= this.budget ? [{ start, end, tokens, ...meta }] : [];
	}

	// The span whole when it fits, else split at line breaks, a line too long at words, a word too long at chars.
	fit(start: number, end: number, meta: Meta, level: Level = "line"): Piece[] {
		const whole = this.piece(start, end, meta);
		if (whole.length) return whole;
		[start, end] = trim(this.text, start, end);
		if (start >= end) return [];
		const cuts = level === "char" ? charCuts(this.text, start, end) : boundaries(this.text, start, end, level);
		if (cuts.length <= 2)
			return level === "char" ? [this.forced(start, end, meta)] : this.fit(start, end, meta, finer(level));
		return this.greedy(cuts, meta, level);
	}

	// Only a few characters that alone exceed a tiny budget: taken as they are rather than cut inside a character.
	private forced(start: number, end: number, meta: Meta): Piece {
		return { start, end, tokens: countTokens(this.text.slice(start, end)), ...meta };
	}

	// Packs consecutive spans between cut points up to the budget; a span alone over it goes down a level.
	private greedy(cuts: number[], meta: Meta, level: Level): Piece[] {
		const out: Piece[] = [];
		const fits = (a: number, b: number) => this.piece(cuts[a], cuts[b], meta).length > 0;
		const last = cuts.length - 1;
		let i = 0;
		while (i < last) {
			if (!fits(i, i + 1)) {
				out.push(
					...(level === "char"
						? [this.forced(cuts[i], cuts[i + 1], meta)]
						: this.fit(cuts[i], cuts[i + 1], meta, finer(level)))
				);
				i++;
				continue;
			}
			// Grow by doubling, then binary search the furthest cut that still fits: few tokenizer calls.
			let good = i + 1;
			let step = 1;
			let bad = last + 1;
			while (good < last) {
				const probe = Math.min(good + step, last);
				if (!fits(i, probe)) {
					bad = probe;
					break;
				}
				good = probe;
				step *= 2;
			}
			while (bad - good > 1) {
				const mid = (good + bad) >> 1;
				if (fits(i, mid)) good = mid;
				else bad = mid;
			}
			out.push(...this.piece(cuts[i], cuts[good], meta));
			i = good;
		}
		return out;
	}

	prose(start: number, end: number, meta: Meta): Piece[] {
		const whole = this.piece(start, end, meta);
		if (whole.length) return whole;
		const out: Piece[] = [];
		for (const [ps, pe] of paragraphs(this.text, start, end)) {
			const paragraph = this.piece(ps, pe, meta);
			if (paragraph.length) {
				out.push(...paragraph);
				continue;
			}
			for (const [ss, se] of sentences(this.text, ps, pe)) out.push(...this.fit(ss, se, meta, "word"));
		}
		return out;
	}

	markdown(): Piece[] {
		const out: Piece[] = [];
		for (const section of markdownSections(this.text)) {
			const meta = section.heading ? { heading: section.heading } : {};
			const whole = this.piece(section.start, section.end, meta);
			if (whole.length) {
				out.push(...whole);
				continue;
			}
			for (const block of section.blocks)
				out.push(
					...(block.fence ? this.fit(block.start, block.end, meta) : this.prose(block.start, block.end, meta))
				);
		}
		return out;
	}

	code(rules: LanguageRules): Piece[] {
		const structure = new CodeStructure(this.text, rules);
		const lines = structure.lines;
		const span = (u: CodeUnit): [number, number] => [lines[u.from].start, lines[u.to - 1].end];
		const take = (u: CodeUnit): Piece[] => {
			const meta = u.symbol ? { symbol: u.symbol } : {};
			const whole = this.piece(...span(u), meta);
			if (whole.length) return whole;
			const opened = u.to - u.from > 1 ? structure.open(u) : undefined;
			if (!opened) return this.fit(...span(u), meta);
			const parts = [opened.head, ...opened.body, ...(opened.tail ? [opened.tail] : [])];
			return parts.flatMap(take);
		};
		return structure.top().flatMap(take);
	}
}

type Meta = { heading?: string; symbol?: string };
type Level = "line" | "word" | "char";
const finer = (level: Level): Level => (level === "line" ? "word" : "char");

// Neighbouring pieces share a chunk while they fit. Markdown never mixes two sections (one heading per chunk).
// Token counts add up across a join but for the blank space between and the odd merge: near the budget the joined
// text is counted exactly.
function pack(text: string, pieces: Piece[], budget: number, kind: ChunkKind): Piece[] {
	const out: Piece[] = [];
	let current: Piece | undefined;
	let symbols: string[] = [];
	for (const p of pieces) {
		const sameSection = kind !== "markdown" || current?.heading === p.heading;
		if (current && sameSection) {
			let joined = current.tokens + p.tokens + countTokens(text.slice(current.end, p.start));
			if (joined <= budget && joined > budget - 8) joined = countTokens(text.slice(current.start, p.end));
			if (joined <= budget) {
				current.end = p.end;
				current.tokens = joined;
				if (p.symbol && !symbols.includes(p.symbol)) symbols.push(p.symbol);
				current.symbol = symbols.length ? symbols.join(", ") : undefined;
				continue;
			}
		}
		current = { ...p };
		symbols = p.symbol ? [p.symbol] : [];
		out.push(current);
	}
	return out;
}

// Each chunk starts with the last words or lines (≤ overlap tokens) of the chunk before it, when they touch.
function withOverlap(text: string, pieces: Piece[], maxTokens: number, overlap: number, kind: ChunkKind): Chunk[] {
	return pieces.map((p, index) => {
		const prev = pieces[index - 1];
		const sameSection = kind !== "markdown" || prev?.heading === p.heading;
		const start = prev && overlap > 0 && sameSection ? overlapStart(text, prev, p.start, overlap, kind) : p.start;
		let chunk: Chunk = { index, text: text.slice(start, p.end), tokens: 0, start, end: p.end };
		chunk.tokens = countTokens(chunk.text);
		// The overlap and the piece can tokenize to one more than their sum: then the piece goes alone.
		if (chunk.tokens > maxTokens) {
			const alone = text.slice(p.start, p.end);
			chunk = { index, text: alone, tokens: countTokens(alone), start: p.start, end: p.end };
		}
		if (p.heading) chunk.heading = p.heading;
		if (p.symbol) chunk.symbol = p.symbol;
		return chunk;
	});
}

function overlapStart(text: string, prev: Piece, start: number, overlap: number, kind: ChunkKind): number {
	// A token is rarely over 6 characters on average: a wider window would only cost tokenizer calls.
	const from = Math.max(prev.start, start - overlap * 6);
	const level = kind === "prose" ? "word" : "line";
	let cuts = boundaries(text, from, start, level).filter(c => c > prev.start && c < start);
	if (!cuts.length && level === "line")
		cuts = boundaries(text, from, start, "word").filter(c => c > prev.start && c < start);
	// The tail's token count grows as its cut moves back: binary search the earliest cut within the overlap.
	let lo = 0;
	let hi = cuts.length;
	while (lo < hi) {
		const mid = (lo + hi) >> 1;
		if (countTokens(text.slice(cuts[mid], start)) <= overlap) hi = mid;
		else lo = mid + 1;
	}
	return lo < cuts.length ? cuts[lo] : start;
}

function trim(text: string, start: number, end: number): [number, number] {
	while (start < end && /\s/.test(text[start])) start++;
	while (end > start && /\s/.test(text[end - 1])) end--;
	return [start, end];
}

// Cut points: start, every line start (or word start) inside, end.
function boundaries(text: string, start: number, end: number, level: "line" | "word"): number[] {
	const cuts = [start];
	const re = level === "line" ? /\n/g : /\s+/g;
	re.lastIndex = start;
	let m: RegExpExecArray | null;
	while ((m = re.exec(text)) && m.index < end) {
		const cut = m.index + m[0].length;
		if (cut > cuts[cuts.length - 1] && cut < end) cuts.push(cut);
	}
	cuts.push(end);
	return cuts;
}

// A word longer than the budget (a minified line, a base64 blob): a cut at every character (never inside a
// surrogate pair); the greedy packing then binary-searches the longest run that fits.
function charCuts(text: string, start: number, end: number): number[] {
	const cuts: number[] = [];
	for (let c = start; c < end; c++) if (!/[\udc00-\udfff]/.test(text[c])) cuts.push(c);
	cuts.push(end);
	return cuts;
}

function paragraphs(text: string, start: number, end: number): [number, number][] {
	const out: [number, number][] = [];
	const re = /\n[ \t]*\n\s*/g;
	re.lastIndex = start;
	let from = start;
	let m: RegExpExecArray | null;
	while ((m = re.exec(text)) && m.index < end) {
		out.push([from, m.index]);
		from = Math.min(end, m.index + m[0].length);
	}
	if (from < end) out.push([from, end]);
	return out;
}

// Sentence ends: . ! ? (and their CJK forms) followed by space or a line end; a single line break also ends one.
function sentences(text: string, start: number, end: number): [number, number][] {
	const out: [number, number][] = [];
	const re = /[.!?。！？]+["')\]]*(?=\s)|\n/g;
	re.lastIndex = start;
	let from = start;
	let m: RegExpExecArray | null;
	while ((m = re.exec(text)) && m.index < end) {
		const cut = m.index + m[0].length;
		out.push([from, cut]);
		from = cut;
	}
	if (from < end) out.push([from, end]);
	return out;
}
