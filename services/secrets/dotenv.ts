// .env files as dotenv reads them (dotenv.parse gives every value), so a file exported here means the same to any
// dotenv consumer. dotenv skips what it cannot read without a word and lets a later line replace an earlier one;
// an import must not lose a secret that way, so records are delimited and checked here first: names by the
// platform's rule, unterminated quotes, stray lines and repeated names are refused with their line.
import dotenv from "dotenv";
import { invalid } from "../../lib/errors";

export interface DotenvEntry {
	name: string;
	value: string;
}
export interface DotenvError {
	line: number;
	message: string;
}

// Secret names as secrets.create takes them, less '/', which dotenv's names do not allow.
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,199}$/;
const RECORD = /^\s*(?:export\s+)?([^=\s]+)\s*=(.*)$/;
const QUOTES = ["'", '"', "`"];
// What may follow a closing quote on its line.
const AFTER_QUOTE = /^\s*(?:#.*)?$/;

export function parseDotenv(text: string): { entries: DotenvEntry[]; errors: DotenvError[] } {
	const entries: DotenvEntry[] = [];
	const errors: DotenvError[] = [];
	const firstLine = new Map<string, number>();
	const lines = text.split(/\r\n?|\n/);
	for (let i = 0; i < lines.length; i++) {
		const line = i + 1;
		const raw = lines[i];
		if (!raw.trim() || raw.trim().startsWith("#")) continue;
		const m = RECORD.exec(raw);
		if (!m) {
			errors.push({ line, message: "expected NAME=value" });
			continue;
		}
		const [, name, after] = m;
		const rest = after.trimStart();
		if (!NAME.test(name)) {
			const rule = "a name starts with a letter or _, then letters, digits, _ . - (at most 200)";
			errors.push({ line, message: `${name.slice(0, 40)}: ${rule}` });
			continue;
		}
		// A quoted value ends at the first matching quote followed only by spaces or a comment, maybe lines later.
		let last = i;
		const q = rest[0];
		if (QUOTES.includes(q)) {
			let closed = closesAt(rest.slice(1), q);
			while (!closed && last + 1 < lines.length) closed = closesAt(lines[++last], q);
			if (!closed) {
				errors.push({ line, message: `${name}: the ${q} quote is not closed` });
				break;
			}
		} else if (after.replace(/\s+#.*$/, "").includes("#")) {
			// dotenv ends an unquoted value at any '#': a secret would be cut short without a word.
			errors.push({ line, message: `${name}: '#' starts a comment in an unquoted value; quote the value` });
			continue;
		}
		const record = lines.slice(i, last + 1).join("\n");
		const parsed = dotenv.parse(record);
		const value = parsed[name];
		// A multi-line record that dotenv did not read as one quoted value (a quote inside it) comes back on one line.
		if (Object.keys(parsed).length !== 1 || value === undefined || (last > i && !value.includes("\n"))) {
			errors.push({ line, message: `${name}: the quoted value cannot be read (a ${q} inside it?)` });
			i = last;
			continue;
		}
		if (firstLine.has(name))
			errors.push({ line, message: `${name} is already set on line ${firstLine.get(name)}` });
		else firstLine.set(name, line);
		entries.push({ name, value });
		i = last;
	}
	return { entries, errors };
}

const closesAt = (text: string, quote: string) => {
	for (let at = text.indexOf(quote); at >= 0; at = text.indexOf(quote, at + 1))
		if (AFTER_QUOTE.test(text.slice(at + 1))) return true;
	return false;
};

// dotenv has no serializer. Each value takes the first quoting dotenv reads back unchanged: single quotes and
// backticks keep everything verbatim, newlines included (but dotenv turns a carriage return into a newline, and a
// value ending in '\' would escape its closing quote); double quotes read \n and \r as escapes and nothing else.
// Verified by test/secrets/dotenv.spec.ts against dotenv.parse itself.
function quote(name: string, value: string): string {
	const verbatim = !value.includes("\r") && !value.endsWith("\\");
	if (verbatim && !value.includes("'")) return `'${value}'`;
	if (verbatim && !value.includes("`")) return `\`${value}\``;
	if (!value.includes('"') && !/\\[nr]/.test(value) && !value.endsWith("\\"))
		return `"${value.replace(/\n/g, "\\n").replace(/\r/g, "\\r")}"`;
	// One line without '#': dotenv reads it whole as an unquoted value and strips the outer quotes.
	if (!/[\r\n#]/.test(value)) return `'${value}'`;
	throw invalid("environment", `${name}: .env cannot carry this value (' " \` together with a line break or #)`);
}

export function serializeDotenv(entries: DotenvEntry[]): string {
	const lines = entries.map(e => {
		if (!NAME.test(e.name)) throw invalid("environment", `${e.name}: .env names allow letters, digits, _ . - only`);
		return `${e.name}=${quote(e.name, e.value)}`;
	});
	return lines.map(l => `${l}\n`).join("");
}
