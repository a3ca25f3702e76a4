// A light lexer for the code chunker: per line, the bracket depth at its start and end and whether it holds code
// at all. Strings and comments are skipped so brackets inside them do not count. Not a parser: a unit boundary it
// misplaces costs a less tidy chunk, never lost text.
import type { LanguageRules } from "./languages";

export interface CodeLine {
	start: number; // char offset of the line in the text
	end: number; // offset after the line's text (before its newline)
	indent: number; // leading whitespace width, tabs counting 4
	depthStart: number;
	depthEnd: number;
	blank: boolean;
	commentOnly: boolean; // a comment and nothing else: leads the unit below it
	code: string; // the line with comments removed and string contents blanked, for finding names
}

const OPEN = "([{";
// Characters that may open or close something (a bracket, string, comment or regex); everything else is plain.
const PLAIN = /[^'"`/#()[\]{}]+/y;
const CLOSE = ")]}";

export function lexLines(text: string, rules: LanguageRules): CodeLine[] {
	const lines: CodeLine[] = [];
	let depth = 0;
	let state: "code" | "block" | "string" = "code";
	let quote = "";
	let pos = 0;
	while (pos <= text.length) {
		const nl = text.indexOf("\n", pos);
		const lineEnd = nl === -1 ? text.length : nl;
		const lineText = text.slice(pos, lineEnd).replace(/\r$/, "");
		const depthStart = depth;
		const startedInside = state !== "code";
		let code = "";
		let sawCode = false;
		let sawComment = startedInside && state === "block";
		let i = 0;
		while (i < lineText.length) {
			if (state === "code") {
				// Fast path: a run of characters that open nothing (most of a line) is copied as it is.
				PLAIN.lastIndex = i;
				const run = PLAIN.exec(lineText);
				if (run) {
					code += run[0];
					if (!sawCode && /\S/.test(run[0])) sawCode = true;
					i += run[0].length;
					continue;
				}
			}
			const ch = lineText[i];
			if (state === "block") {
				const close = rules.blockComment![1];
				const at = lineText.indexOf(close, i);
				if (at === -1) i = lineText.length;
				else {
					state = "code";
					i = at + close.length;
				}
				continue;
			}
			if (state === "string") {
				if (ch === "\\" && quote.length === 1) {
					i += 2;
					code += "  ";
					continue;
				}
				if (lineText.startsWith(quote, i)) {
					state = "code";
					code += quote;
					i += quote.length;
				} else {
					code += " ";
					i++;
				}
				continue;
			}
			if (rules.lineComments.some(c => lineText.startsWith(c, i))) {
				sawComment = true;
				break;
			}
			if (rules.blockComment && lineText.startsWith(rules.blockComment[0], i)) {
				state = "block";
				sawComment = true;
				i += rules.blockComment[0].length;
				continue;
			}
			if (rules.tripleQuotes && (lineText.startsWith('"""', i) || lineText.startsWith("'''", i))) {
				state = "string";
				quote = lineText.slice(i, i + 3);
				code += quote;
				sawCode = true;
				i += 3;
				continue;
			}
			if (ch === "'" && rules.charLiteral) {
				const m = /^'(\\.[^']*|[^'\\])'/.exec(lineText.slice(i));
				const len = m ? m[0].length : 1;
				code += "'".padEnd(len, " ");
				sawCode = true;
				i += len;
				continue;
			}
			if (ch === "/" && rules.regexLiterals && /(^|[(,=:[!&|?{};+\-*%<>~^]|\breturn)\s*$/.test(code)) {
				const len = regexLength(lineText, i);
				if (len) {
					code += "/".padEnd(len, " ");
					sawCode = true;
					i += len;
					continue;
				}
			}
			if (rules.quotes.includes(ch)) {
				state = "string";
				quote = ch;
				code += ch;
				sawCode = true;
				i++;
				continue;
			}
			if (OPEN.includes(ch)) depth++;
			else if (CLOSE.includes(ch)) depth = Math.max(0, depth - 1);
			if (!/\s/.test(ch)) sawCode = true;
			code += ch;
			i++;
		}
		// A one-line quote left open (a stray apostrophe) must not swallow the rest of the file.
		if (state === "string" && quote.length === 1 && quote !== "`") state = "code";
		const indentMatch = /^[ \t]*/.exec(lineText)![0];
		lines.push({
			start: pos,
			end: pos + lineText.length,
			indent: indentMatch.replace(/\t/g, "    ").length,
			depthStart,
			depthEnd: depth,
			blank: !sawCode && !sawComment && !startedInside,
			commentOnly: !sawCode && (sawComment || (startedInside && state !== "string")),
			code
		});
		if (nl === -1) break;
		pos = nl + 1;
	}
	return lines;
}

// Length of a JS regex literal starting at `at` ("/" … "/" flags, "/" inside [...] allowed), 0 if none ends on this line.
function regexLength(line: string, at: number): number {
	let inClass = false;
	for (let i = at + 1; i < line.length; i++) {
		const ch = line[i];
		if (ch === "\\") i++;
		else if (ch === "[") inClass = true;
		else if (ch === "]") inClass = false;
		else if (ch === "/" && !inClass) return i + 1 - at + (/^[a-z]*/.exec(line.slice(i + 1))?.[0].length ?? 0);
	}
	return 0;
}

// Words that look like a call before "(" but never name a unit.
const NOT_NAMES = new Set(
	"if for while switch catch return new else do try throw await yield typeof sizeof function match using lock foreach elif with assert print defined".split(
		" "
	)
);

const NAME_PATTERNS: RegExp[] = [
	/^\s*(?:async\s+)?def\s+(?:self\.)?([A-Za-z_]\w*[?!=]?)/,
	/^\s*func\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)/,
	/\bfn\s+([A-Za-z_]\w*)/,
	/\bfunction\s*\*?\s*&?\s*([A-Za-z_$][\w$]*)/,
	/\b(?:class|interface|struct|enum|trait|union|namespace|module|record|protocol|object)\s+([A-Za-z_$][\w$]*(?:::[A-Za-z_]\w*)*)/,
	/^\s*impl(?:<[^>]*>)?\s+(?:[\w:<>, ]+\s+for\s+)?([A-Za-z_][\w:]*)/,
	/^\s*type\s+([A-Za-z_$][\w$]*)/,
	/^\s*(?:export\s+)?(?:default\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)/,
	/^\s*(?:(?:public|private|protected|static|readonly|async|abstract|override|get|set)\s+)*#?([A-Za-z_$][\w$]*)\s*[=:]\s*(?:async\s*)?(?:\([^)]*\)|[A-Za-z_$][\w$]*)\s*=>/
];

// The name a unit declares, from its first code line: "parse", "Parser", "Server.handle" (Go receivers aside).
export function unitName(code: string): string | undefined {
	for (const p of NAME_PATTERNS) {
		const m = p.exec(code);
		if (m && !NOT_NAMES.has(m[1])) return m[1];
	}
	// Methods and C functions: the last identifier before the first "(" ("static int main(", "public void run(").
	// A statement ending in ";" is a call or a prototype, not a unit with a body.
	if (code.trim().endsWith(";")) return undefined;
	const call = /(?<![.\w$])([A-Za-z_$~][\w$]*)\s*(?:<[^<>()]*>)?\s*\(/.exec(code);
	if (call && !NOT_NAMES.has(call[1]) && !/^\s*[)\].]/.test(code)) return call[1];
	return undefined;
}
