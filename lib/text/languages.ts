// Which chunker a text gets, guessed from a language name or a file's extension, and the lexical rules the code
// chunker needs per language family (comments and strings, so brackets inside them are not counted).
import type { ChunkKind } from "./chunk";

export interface LanguageRules {
	name: string;
	// "brace": units end where their brackets close (C family, Go, Rust, JS, PHP); "indent": where indentation
	// returns to the unit's own level (Python, Ruby).
	structure: "brace" | "indent";
	lineComments: string[];
	blockComment?: [string, string];
	// Quote characters whose strings may run long; `'` in C-like languages is a char literal ('a', '\n') instead,
	// so a Rust lifetime ('a) does not open a string.
	quotes: string[];
	charLiteral?: boolean;
	regexLiterals?: boolean; // JS: /[{(]/ is a pattern, not brackets
	tripleQuotes?: boolean;
	// Lines at a unit's own level that still belong to it (Python's else/except, Ruby's end).
	continuation?: RegExp;
}

const C_LIKE = {
	structure: "brace",
	lineComments: ["//"],
	blockComment: ["/*", "*/"],
	quotes: ['"'],
	charLiteral: true
};

const RULES: Record<string, LanguageRules> = {
	typescript: {
		name: "typescript",
		structure: "brace",
		lineComments: ["//"],
		blockComment: ["/*", "*/"],
		quotes: ['"', "'", "`"],
		regexLiterals: true
	},
	javascript: {
		name: "javascript",
		structure: "brace",
		lineComments: ["//"],
		blockComment: ["/*", "*/"],
		quotes: ['"', "'", "`"],
		regexLiterals: true
	},
	go: { ...C_LIKE, name: "go", quotes: ['"', "`"] } as LanguageRules,
	java: { ...C_LIKE, name: "java" } as LanguageRules,
	csharp: { ...C_LIKE, name: "csharp" } as LanguageRules,
	rust: { ...C_LIKE, name: "rust" } as LanguageRules,
	c: { ...C_LIKE, name: "c" } as LanguageRules,
	cpp: { ...C_LIKE, name: "cpp" } as LanguageRules,
	kotlin: { ...C_LIKE, name: "kotlin" } as LanguageRules,
	swift: { ...C_LIKE, name: "swift" } as LanguageRules,
	scala: { ...C_LIKE, name: "scala" } as LanguageRules,
	php: { name: "php", structure: "brace", lineComments: ["//", "#"], blockComment: ["/*", "*/"], quotes: ['"', "'"] },
	python: {
		name: "python",
		structure: "indent",
		lineComments: ["#"],
		quotes: ['"', "'"],
		tripleQuotes: true,
		continuation: /^(else|elif|except|finally)\b|^[)\]}]/
	},
	ruby: {
		name: "ruby",
		structure: "indent",
		lineComments: ["#"],
		quotes: ['"', "'"],
		continuation: /^(end|else|elsif|when|in|rescue|ensure)\b|^[)\]}]/
	}
};

const ALIASES: Record<string, string> = {
	ts: "typescript",
	tsx: "typescript",
	mts: "typescript",
	cts: "typescript",
	js: "javascript",
	jsx: "javascript",
	mjs: "javascript",
	cjs: "javascript",
	vue: "javascript",
	py: "python",
	pyi: "python",
	golang: "go",
	rs: "rust",
	cs: "csharp",
	"c#": "csharp",
	h: "c",
	cc: "cpp",
	cxx: "cpp",
	hpp: "cpp",
	hh: "cpp",
	hxx: "cpp",
	"c++": "cpp",
	rb: "ruby",
	rake: "ruby",
	kt: "kotlin",
	kts: "kotlin",
	sc: "scala"
};

const MARKDOWN = new Set(["markdown", "md", "mdx", "markdn", "mkd"]);
const PROSE = new Set(["text", "txt", "prose", "plain", "plaintext", "rst", "adoc"]);

// "python", "py", "main.py", "src/App.TSX" → a language key, or undefined when nothing matches.
function normalise(nameOrPath: string | undefined): string | undefined {
	if (!nameOrPath) return undefined;
	const lower = nameOrPath.trim().toLowerCase();
	const base = lower.split(/[\\/]/).pop() ?? lower;
	const ext = base.includes(".") ? base.slice(base.lastIndexOf(".") + 1) : base;
	for (const candidate of [lower, ext]) {
		if (RULES[candidate] || MARKDOWN.has(candidate) || PROSE.has(candidate)) return candidate;
		if (ALIASES[candidate]) return ALIASES[candidate];
	}
	if (base === "rakefile" || base === "gemfile") return "ruby";
	return undefined;
}

export function resolveLanguage(
	language: string | undefined,
	path: string | undefined
): { kind: ChunkKind; rules?: LanguageRules } {
	const key = normalise(language) ?? normalise(path);
	if (key && RULES[key]) return { kind: "code", rules: RULES[key] };
	if (key && MARKDOWN.has(key)) return { kind: "markdown" };
	return { kind: "prose" };
}

// An unknown language asked for as code is chunked with the C-family rules: brackets are the common structure.
export const FALLBACK_CODE_RULES: LanguageRules = { ...RULES.c, name: "code" };
