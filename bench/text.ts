// lib/text: chunking and the built-in lexical embedder, pure CPU in this process (no services).
// - chunkText on generated prose, Markdown and TypeScript: MB/s and chunks/s (256-token chunks, 32 overlap);
// - countTokens (cl100k_base) alone: MB/s, the floor under chunking;
// - embedLocal on 256-token chunks: texts/s and MB/s, in batches of 64.
// Prints a table and writes bench/results/text.json. Env: BENCH_TEXT_MB (2, per kind), BENCH_TEXT_EMBED (20000).
import fs from "fs";
import path from "path";
import { chunkText, countTokens, type ChunkKind } from "../lib/text/chunk";
import { embedLocal } from "../lib/text/local-embedder";

const MB = Number(process.env.BENCH_TEXT_MB ?? 2);
const EMBED = Number(process.env.BENCH_TEXT_EMBED ?? 20000);

// A seeded generator: the same corpus on every run.
let seed = 42;
const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
const WORDS = (
	"index vector search query chunk document embedding model token collection filter score rank hybrid " +
	"postgres table row column worker job progress cancel resume replica cluster event channel service " +
	"the a of to and in for with on by from that this is are was it as be"
).split(" ");
const word = () => WORDS[Math.floor(rand() * WORDS.length)];
const sentence = () => {
	const n = 6 + Math.floor(rand() * 14);
	const s = Array.from({ length: n }, word).join(" ");
	return s[0].toUpperCase() + s.slice(1) + ".";
};
const paragraph = () => Array.from({ length: 2 + Math.floor(rand() * 5) }, sentence).join(" ");

function corpus(kind: ChunkKind, bytes: number): string {
	const parts: string[] = [];
	let size = 0;
	let i = 0;
	while (size < bytes) {
		let part: string;
		if (kind === "prose") part = paragraph() + "\n\n";
		else if (kind === "markdown")
			part =
				`${"#".repeat(1 + (i % 3))} Section ${i}\n\n${paragraph()}\n\n` +
				(i % 4 === 0 ? "```ts\nconst x = search(query, { k: 10 });\n```\n\n" : "");
		else
			part =
				`// ${sentence()}\nexport function handler${i}(input: Input): Output {\n` +
				Array.from({ length: 3 + (i % 20) }, (_, j) => `\tconst v${j} = step${j}(input, "${word()}");`).join(
					"\n"
				) +
				`\n\treturn { ok: true };\n}\n\n` +
				(i % 5 === 0 ? `export class Service${i} {\n\trun(): void {\n\t\tthis.go();\n\t}\n}\n\n` : "");
		parts.push(part);
		size += part.length;
		i++;
	}
	return parts.join("");
}

function time<T>(fn: () => T): { ms: number; value: T } {
	const t0 = performance.now();
	const value = fn();
	return { ms: performance.now() - t0, value };
}

const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
const results: Record<string, unknown> = {};

const prose = corpus("prose", MB * 1e6);
// Warm-up: loads the tokenizer's ranks and lets the JIT settle.
chunkText(prose.slice(0, 200_000));
embedLocal([prose.slice(0, 20_000)]);

const tokens = time(() => countTokens(prose));
results.countTokens = { mbPerSecond: round(prose.length / 1e3 / tokens.ms), tokens: tokens.value };

for (const kind of ["prose", "markdown", "code"] as ChunkKind[]) {
	const text = kind === "prose" ? prose : corpus(kind, MB * 1e6);
	const options = kind === "code" ? { path: "bench.ts" } : { kind };
	const run = time(() => chunkText(text, options));
	const chunks = run.value;
	results[`chunk-${kind}`] = {
		mbPerSecond: round(text.length / 1e3 / run.ms),
		chunksPerSecond: Math.round((chunks.length / run.ms) * 1000),
		chunks: chunks.length,
		meanTokens: Math.round(chunks.reduce((s, c) => s + c.tokens, 0) / chunks.length)
	};
}

const chunks = chunkText(prose).map(c => c.text);
const texts = Array.from({ length: EMBED }, (_, i) => chunks[i % chunks.length]);
const chars = texts.reduce((s, t) => s + t.length, 0);
const embed = time(() => {
	for (let i = 0; i < texts.length; i += 64) embedLocal(texts.slice(i, i + 64));
});
results.embedLocal = {
	textsPerSecond: Math.round((texts.length / embed.ms) * 1000),
	mbPerSecond: round(chars / 1e3 / embed.ms),
	meanChars: Math.round(chars / texts.length),
	dimensions: 384
};

console.table(results);
const out = path.join(__dirname, "results", "text.json");
fs.writeFileSync(out, JSON.stringify({ at: new Date().toISOString(), node: process.version, results }, null, 2) + "\n");
console.log(`written ${path.relative(process.cwd(), out)}`);
