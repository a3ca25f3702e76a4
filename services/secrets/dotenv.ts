// .env files: KEY=value lines, optional `export `, # comments, single or double quotes (double quotes understand
// \n, \", \\). Serializing quotes every value so it reads back byte for byte.
export interface DotenvEntry {
	name: string;
	value: string;
}

export function parseDotenv(text: string): { entries: DotenvEntry[]; errors: { line: number; message: string }[] } {
	const entries: DotenvEntry[] = [];
	const errors: { line: number; message: string }[] = [];
	text.split(/\r?\n/).forEach((raw, i) => {
		const line = raw.trim();
		if (!line || line.startsWith("#")) return;
		const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
		if (!m) return errors.push({ line: i + 1, message: "expected NAME=value" });
		let value = m[2];
		if (value.startsWith('"')) {
			const end = /^"((?:[^"\\]|\\.)*)"\s*(#.*)?$/.exec(value);
			if (!end) return errors.push({ line: i + 1, message: "unterminated double quote" });
			value = end[1].replace(/\\(n|r|t|"|\\)/g, (_, c) => ({ n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\" })[c as "n"]);
		} else if (value.startsWith("'")) {
			const end = /^'([^']*)'\s*(#.*)?$/.exec(value);
			if (!end) return errors.push({ line: i + 1, message: "unterminated single quote" });
			value = end[1];
		} else value = value.replace(/\s+#.*$/, "").trim();
		entries.push({ name: m[1], value });
	});
	return { entries, errors };
}

export function serializeDotenv(entries: DotenvEntry[]): string {
	const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t");
	return entries.map(e => `${e.name}="${esc(e.value)}"`).join("\n") + (entries.length ? "\n" : "");
}
