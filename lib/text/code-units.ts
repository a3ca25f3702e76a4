// Source code as a tree of units (functions, classes, methods, top-level statements) found from bracket depth
// (C family, Go, Rust, JS/TS, PHP) or indentation (Python, Ruby). The chunker takes a unit whole when it fits and
// opens it (signature, inner units, closing line) when it does not.
import { lexLines, unitName, type CodeLine } from "./code-lines";
import type { LanguageRules } from "./languages";

export interface CodeUnit {
	from: number; // first line (leading comments and decorators included)
	to: number; // line after the last
	symbol?: string;
	container: boolean; // a class-like unit: its inner units are named Class.member
}

export interface OpenedUnit {
	head: CodeUnit;
	body: CodeUnit[];
	tail?: CodeUnit;
}

const CONTAINER = /\b(class|interface|struct|enum|trait|impl|namespace|module|object|record|protocol|extension)\b/;
// Lines that annotate the unit below them: @decorators, Rust #[attributes], C# [Attributes].
const ANNOTATION = /^\s*(@[A-Za-z_]|#\[|\[[A-Za-z_][\w.]*(\(|\]))/;
// A line starting with one of these goes on with the statement above it (K&R braces, chained calls, ternaries).
const CONTINUES = /^\s*([{.)\]?:]|&&|\|\||=>)/;

export class CodeStructure {
	readonly lines: CodeLine[];

	constructor(
		text: string,
		private rules: LanguageRules
	) {
		this.lines = lexLines(text, rules);
	}

	top(): CodeUnit[] {
		return this.unitsIn(0, this.lines.length, undefined);
	}

	// The parts of a unit too big to take whole, or undefined when it has no inner structure.
	open(unit: CodeUnit): OpenedUnit | undefined {
		const lines = this.lines;
		let s = unit.from;
		while (s < unit.to && (lines[s].blank || lines[s].commentOnly || ANNOTATION.test(lines[s].code))) s++;
		if (s >= unit.to - 1) return undefined;
		let h: number;
		let bodyEnd = unit.to;
		if (this.rules.structure === "brace") {
			const base = lines[s].depthStart;
			h = s;
			while (h < unit.to && lines[h].depthEnd <= base) h++;
			const last = lines[unit.to - 1];
			if (last.depthEnd <= base && /^\s*[)\]}]/.test(last.code)) bodyEnd = unit.to - 1;
		} else {
			const indent = lines[s].indent;
			const depth = lines[s].depthStart;
			h = s;
			while (h + 1 < unit.to && lines[h + 1].depthStart > depth) h++;
			const last = lines[unit.to - 1];
			if (last.indent <= indent && this.rules.continuation?.test(last.code.trim())) bodyEnd = unit.to - 1;
		}
		if (h + 1 >= bodyEnd) return undefined;
		const prefix = unit.container ? unit.symbol : undefined;
		const body = this.unitsIn(h + 1, bodyEnd, prefix).map(u =>
			unit.container ? u : { ...u, symbol: unit.symbol ?? u.symbol, container: false }
		);
		return {
			head: { from: unit.from, to: h + 1, symbol: unit.symbol, container: false },
			body,
			tail: bodyEnd < unit.to ? { from: bodyEnd, to: unit.to, symbol: unit.symbol, container: false } : undefined
		};
	}

	private unitsIn(from: number, to: number, prefix: string | undefined): CodeUnit[] {
		const lines = this.lines;
		const code = (i: number) => !lines[i].blank && !lines[i].commentOnly;
		let baseDepth = Infinity;
		for (let i = from; i < to; i++) if (code(i)) baseDepth = Math.min(baseDepth, lines[i].depthStart);
		const units: CodeUnit[] = [];
		let i = from;
		while (i < to) {
			while (i < to && lines[i].blank) i++;
			if (i >= to) break;
			const lead = i;
			while (i < to && !lines[i].blank && (lines[i].commentOnly || ANNOTATION.test(lines[i].code))) i++;
			if (i >= to || lines[i].blank) {
				// Comments with no code right below them: a unit of their own.
				units.push({ from: lead, to: i, symbol: prefix, container: false });
				continue;
			}
			const s = i;
			const indent = lines[s].indent;
			const continues = (line: CodeLine): boolean =>
				line.depthStart > baseDepth ||
				(this.rules.structure === "brace"
					? CONTINUES.test(line.code)
					: line.indent > indent ||
						(line.indent === indent && !!this.rules.continuation?.test(line.code.trim())));
			// Blank and comment lines belong to the unit when code of the unit follows them.
			const belongs = (j: number): boolean => {
				let k = j;
				while (k < to && !code(k)) k++;
				return k < to && continues(lines[k]);
			};
			let j = s + 1;
			while (j < to && belongs(j)) j++;
			while (j > s + 1 && lines[j - 1].blank) j--;
			const name = unitName(lines[s].code);
			units.push({
				from: lead,
				to: j,
				symbol: prefix && name ? `${prefix}.${name}` : (name ?? prefix),
				container: CONTAINER.test(lines[s].code)
			});
			i = j;
		}
		return units;
	}
}
