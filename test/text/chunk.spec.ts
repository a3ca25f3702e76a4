// Chunking for embeddings: every chunk is a slice of the input within the token budget, nothing is lost, and the
// cuts follow the text's structure (paragraphs and sentences, Markdown sections, code units) before its length.
import { chunkText, countTokens, type Chunk, type ChunkOptions } from "../../lib/text/chunk";
import { SAMPLES } from "./code-samples";

// What must hold for any input: slices of the input, within budget, in order, covering every non-space character.
function checked(text: string, options: ChunkOptions = {}): Chunk[] {
	const chunks = chunkText(text, options);
	const max = options.maxTokens ?? 256;
	const covered = new Uint8Array(text.length);
	chunks.forEach((c, i) => {
		expect(c.index).toBe(i);
		expect(c.text).toBe(text.slice(c.start, c.end));
		expect(c.tokens).toBe(countTokens(c.text));
		expect(c.tokens).toBeLessThanOrEqual(max);
		if (i > 0) expect(c.start).toBeGreaterThan(chunks[i - 1].start);
		covered.fill(1, c.start, c.end);
	});
	for (let i = 0; i < text.length; i++) if (!/\s/.test(text[i])) expect([i, covered[i]]).toEqual([i, 1]);
	return chunks;
}

const sentence = (i: number) => `Sentence number ${i} talks about topic ${i % 7} in a few plain words.`;

test("countTokens counts cl100k_base tokens", () => {
	expect(countTokens("")).toBe(0);
	expect(countTokens("hello world")).toBe(2);
	expect(countTokens("The quick brown fox jumps over the lazy dog.")).toBe(10);
});

test("empty and whitespace-only text gives no chunks", () => {
	expect(chunkText("")).toEqual([]);
	expect(chunkText(" \n\t\n ")).toEqual([]);
	expect(chunkText("", { path: "a.py" })).toEqual([]);
});

test("a short text is one chunk spanning it without its surrounding blank space", () => {
	const text = "\n\n  Just one line of prose.  \n";
	expect(checked(text)).toEqual([
		{ index: 0, text: "Just one line of prose.", tokens: countTokens("Just one line of prose."), start: 4, end: 27 }
	]);
});

test("prose breaks between paragraphs when they do not fit together", () => {
	const p1 = [1, 2, 3].map(sentence).join(" ");
	const p2 = [4, 5, 6].map(sentence).join(" ");
	const text = `${p1}\n\n${p2}`;
	const max = countTokens(p1) + 8;
	const chunks = checked(text, { maxTokens: max, overlapTokens: 0 });
	expect(chunks.map(c => c.text)).toEqual([p1, p2]);
});

test("a paragraph over the budget splits at sentence ends, not inside sentences", () => {
	const text = Array.from({ length: 40 }, (_, i) => sentence(i)).join(" ");
	const chunks = checked(text, { maxTokens: 60, overlapTokens: 0 });
	expect(chunks.length).toBeGreaterThan(5);
	for (const c of chunks) expect(c.text).toMatch(/^Sentence number \d+ .*words\.$/);
});

test("neighbouring chunks overlap by at most overlapTokens, and not at all with 0", () => {
	const text = Array.from({ length: 60 }, (_, i) => sentence(i)).join(" ");
	const overlapping = checked(text, { maxTokens: 64, overlapTokens: 16 });
	expect(overlapping.length).toBeGreaterThan(3);
	for (let i = 1; i < overlapping.length; i++) {
		const shared = text.slice(overlapping[i].start, overlapping[i - 1].end);
		expect(overlapping[i].start).toBeLessThan(overlapping[i - 1].end);
		expect(countTokens(shared)).toBeLessThanOrEqual(16);
		// Overlap starts at a word, never inside one.
		expect(text[overlapping[i].start - 1]).toMatch(/\s/);
	}
	const apart = checked(text, { maxTokens: 64, overlapTokens: 0 });
	for (let i = 1; i < apart.length; i++) expect(apart[i].start).toBeGreaterThanOrEqual(apart[i - 1].end);
});

test("a word longer than the budget (a minified blob) is cut by characters, still within the budget", () => {
	const blob = "x9Qz".repeat(400);
	const chunks = checked(`Before.\n\n${blob}\n\nAfter.`, { maxTokens: 32, overlapTokens: 0 });
	expect(chunks.length).toBeGreaterThan(10);
});

test("dense punctuation, emoji, CJK and CRLF line ends stay within a small budget, never cut inside a character", () => {
	const texts = [
		'`HOST=0.0.0.0`;`RABBITMQ_RESTART_TEST=1`,(`ctx.call("auth-teams.get")`)'.repeat(20),
		"😀".repeat(300),
		"日本語の文章です。".repeat(60),
		Array.from({ length: 30 }, (_, i) => sentence(i)).join("\r\n")
	];
	for (const text of texts) {
		const chunks = checked(text, { maxTokens: 8, overlapTokens: 2 });
		for (const c of chunks) expect(c.text).not.toMatch(/^[\udc00-\udfff]|[\ud800-\udbff]$/);
	}
});

describe("markdown", () => {
	const doc = [
		"Intro before any heading.",
		"",
		"# Guide",
		"Welcome text.",
		"",
		"## Install",
		"Run the installer.",
		"",
		"```sh",
		"# not a heading: a shell comment",
		"npm install",
		"```",
		"",
		"### Linux",
		"Use the package.",
		"",
		"## Usage",
		"Start it."
	].join("\n");

	test("chunks carry their heading path and never mix two sections", () => {
		const chunks = checked(doc, { path: "docs/README.md" });
		expect(chunks.map(c => [c.heading, c.text.split("\n")[0]])).toEqual([
			[undefined, "Intro before any heading."],
			["Guide", "# Guide"],
			["Guide > Install", "## Install"],
			["Guide > Install > Linux", "### Linux"],
			["Guide > Usage", "## Usage"]
		]);
		expect(chunks[2].text).toContain("# not a heading: a shell comment\nnpm install\n```");
	});

	test("a large section splits between blocks, keeping a code fence whole when it fits", () => {
		const fence =
			"```ts\n" + Array.from({ length: 8 }, (_, i) => `const value${i} = compute(${i});`).join("\n") + "\n```";
		const prose = Array.from({ length: 12 }, (_, i) => sentence(i)).join(" ");
		const text = `# Big\n\n${prose}\n\n${fence}\n\n${prose}`;
		const chunks = checked(text, { kind: "markdown", maxTokens: countTokens(fence) + 40, overlapTokens: 8 });
		expect(chunks.length).toBeGreaterThan(2);
		expect(chunks.some(c => c.text.includes(fence))).toBe(true);
		for (const c of chunks) expect(c.heading).toBe("Big");
	});

	test("a fence too big for one chunk splits by lines", () => {
		const fence = "```\n" + Array.from({ length: 80 }, (_, i) => `line ${i} of the listing`).join("\n") + "\n```";
		const chunks = checked(`## Listing\n\n${fence}`, { kind: "markdown", maxTokens: 50, overlapTokens: 0 });
		expect(chunks.length).toBeGreaterThan(5);
		for (const c of chunks.slice(1)) expect(c.text).toMatch(/^(```\n)?(line \d+ of the listing\n?)+(```)?$/);
	});
});

describe("code", () => {
	test.each(Object.entries(SAMPLES))("%s: units are found and named", (language, sample) => {
		// A budget that holds the whole file: one chunk naming the top-level units in order.
		const whole = checked(sample.source, { language, maxTokens: 2000, overlapTokens: 0 });
		expect(whole).toHaveLength(1);
		expect(whole[0].symbol).toBe(sample.top.join(", "));
		// A small budget: the container is opened and its members named Class.member; chunks start at a unit's
		// first line (its comment or decorator) or at a line of a unit that was split.
		const small = checked(sample.source, { language, maxTokens: sample.small, overlapTokens: 0 });
		const symbols = small.flatMap(c => c.symbol?.split(", ") ?? []);
		for (const name of sample.members) expect(symbols).toContain(name);
		for (const c of small)
			expect(
				c.start === 0 || sample.source[c.start - 1] === "\n" || /^\s/.test(sample.source.slice(c.start - 1))
			).toBe(true);
	});

	test("the language is guessed from the path when not given", () => {
		const py = SAMPLES.python.source;
		expect(chunkText(py, { path: "pkg/tool.py", maxTokens: 2000 })[0].symbol).toBe(SAMPLES.python.top.join(", "));
		expect(chunkText(py, { path: "notes.txt", maxTokens: 2000 })[0].symbol).toBeUndefined();
		expect(chunkText(SAMPLES.go.source, { language: "main.go", maxTokens: 2000 })[0].symbol).toBe(
			"Add, Server, Handle"
		);
	});

	test("a function over the budget is split between its statements, each piece named after the function", () => {
		const body = Array.from({ length: 120 }, (_, i) => `\tconst v${i} = load(${i}) + v${i - 1 < 0 ? 0 : i - 1};`);
		const source = `import { load } from "./load";\n\nexport function big(): number {\n${body.join("\n")}\n\treturn 0;\n}\n`;
		const chunks = checked(source, { path: "big.ts", maxTokens: 100, overlapTokens: 20 });
		expect(chunks.length).toBeGreaterThan(10);
		for (const c of chunks.slice(1)) expect(c.symbol).toBe("big");
		for (let i = 1; i < chunks.length; i++) expect(source[chunks[i].start - 1]).toMatch(/\s/);
	});

	test("brackets inside strings, comments, chars and regexes do not confuse the units", () => {
		const source = [
			"const open = '{';",
			"// a comment with { an open brace",
			"const re = /[{(]/g;",
			"/* block { */",
			"function first() {",
			'\treturn "}}";',
			"}",
			"",
			"function second() {",
			"\treturn `${open}`;",
			"}"
		].join("\n");
		const chunks = checked(source, { language: "typescript", maxTokens: 2000 });
		expect(chunks[0].symbol).toBe("open, re, first, second");
	});
});
