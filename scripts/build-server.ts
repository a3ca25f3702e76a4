// The server compiled to JavaScript in dist/: `npm start` and the image run dist/lib/main.js with plain node, not the
// TypeScript sources through tsx, whose loader (its hooks thread, esbuild and the transformed sources with their
// source maps) costs every process about 40 MiB of its RSS. `npm run dev`, the REPL, the tests and the benches keep
// running the sources through tsx.
//
// Each file is transpiled alone (TypeScript's transpileModule, no type check: `npm run typecheck` does that), as
// tsx does; dist/ keeps the sources' layout, so the code finds its modules (dist/services/<module>/*.service.js,
// *.module.js), and its .mjs workers are copied beside it. What it reads but never compiles (migrations/, public/,
// package.json) it finds from the project root (lib/paths.ts). dist/.sources.json holds a hash of every source:
// `--if-stale` (npm start's prestart) compiles only when a source was added, changed or removed.
//
//   npm run build:server              compile dist/ again
//   npm run build:server -- --if-stale  only when the sources changed since the last build
import fs from "fs";
import path from "path";
import crypto from "crypto";

const ROOT = path.resolve(__dirname, "..");
export const DIST = path.join(ROOT, "dist");
const STAMP = ".sources.json";
const SOURCES = ["moleculer.config.ts", "lib", "mixins", "services"];
const COPIED = /\.(mjs|cjs|js|json)$/;

function sourceFiles(): string[] {
	const out: string[] = [];
	const walk = (rel: string) => {
		const abs = path.join(ROOT, rel);
		if (fs.statSync(abs).isDirectory()) {
			for (const name of fs.readdirSync(abs).sort()) walk(path.join(rel, name));
		} else if ((rel.endsWith(".ts") && !rel.endsWith(".d.ts")) || COPIED.test(rel)) out.push(rel);
	};
	for (const s of SOURCES) walk(s);
	return out;
}

// What a build was made from: every source file's hash, and the compiler's version.
function stampOf(files: string[], compiler: string): string {
	const hashes = Object.fromEntries(
		files.map(f => [
			f,
			crypto
				.createHash("sha1")
				.update(fs.readFileSync(path.join(ROOT, f)))
				.digest("hex")
		])
	);
	return JSON.stringify({ compiler, files: hashes }, null, 1) + "\n";
}

function builtStamp(): { compiler?: string; files?: Record<string, string> } | undefined {
	try {
		return JSON.parse(fs.readFileSync(path.join(DIST, STAMP), "utf8"));
	} catch {
		return undefined;
	}
}

// Whether dist/ was compiled from the sources as they are now (by whichever compiler version).
export function isCurrent(): boolean {
	const built = builtStamp();
	if (!built?.compiler) return false;
	return stampOf(sourceFiles(), built.compiler) === fs.readFileSync(path.join(DIST, STAMP), "utf8");
}

// `out` must lie inside the project (lib/paths.ts finds the root from it); a test builds into test-artifacts/.
export function build(out = DIST): number {
	const ts: typeof import("typescript") = require("typescript");
	const files = sourceFiles();
	// Written beside dist/ and swapped in whole: no file of a removed source is left behind, and a failed build
	// leaves the previous one.
	const tmp = `${out}.tmp-${process.pid}`;
	fs.rmSync(tmp, { recursive: true, force: true });
	try {
		for (const rel of files) {
			const src = path.join(ROOT, rel);
			const dest = path.join(tmp, rel.replace(/\.ts$/, ".js"));
			fs.mkdirSync(path.dirname(dest), { recursive: true });
			if (!rel.endsWith(".ts")) {
				fs.copyFileSync(src, dest);
				continue;
			}
			const r = ts.transpileModule(fs.readFileSync(src, "utf8"), {
				fileName: src,
				reportDiagnostics: true,
				compilerOptions: {
					// Node16 leaves import() as it is (what tsx does): ESM-only packages load through it.
					module: ts.ModuleKind.Node16,
					target: ts.ScriptTarget.ES2022,
					esModuleInterop: true,
					sourceMap: true,
					sourceRoot: path.relative(path.dirname(path.join(out, rel)), path.dirname(src))
				}
			});
			const errors = (r.diagnostics ?? []).filter(d => d.category === ts.DiagnosticCategory.Error);
			if (errors.length)
				throw new Error(`${rel}: ${ts.flattenDiagnosticMessageText(errors[0].messageText, "\n")}`);
			fs.writeFileSync(dest, r.outputText);
			fs.writeFileSync(`${dest}.map`, r.sourceMapText!);
		}
		fs.writeFileSync(path.join(tmp, STAMP), stampOf(files, ts.version));
		fs.rmSync(out, { recursive: true, force: true });
		fs.renameSync(tmp, out);
	} catch (err) {
		fs.rmSync(tmp, { recursive: true, force: true });
		throw err;
	}
	return files.length;
}

// One build at a time: several `npm start` of a fresh checkout at once (README: a cluster by hand) wait for the first
// one's build, then find dist/ current. A lock older than two minutes is a build that died.
function withLock(fn: () => void) {
	const lock = `${DIST}.lock`;
	for (;;) {
		try {
			fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
			break;
		} catch {
			const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
			if (age > 120_000) fs.rmSync(lock, { force: true });
			else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
		}
	}
	try {
		fn();
	} finally {
		fs.rmSync(lock, { force: true });
	}
}

// dist/ compiled from the sources as they are now, compiling it (and saying so) when not.
export function buildIfStale() {
	withLock(() => {
		if (isCurrent()) return;
		console.log("Compiling the server into dist/ (the sources changed since the last build)…");
		compile();
	});
}

function compile() {
	const t0 = Date.now();
	const n = build();
	console.log(`Compiled the server into dist/ (${n} files, ${((Date.now() - t0) / 1000).toFixed(1)} s).`);
}

function hasTypeScript(): boolean {
	try {
		require.resolve("typescript");
		return true;
	} catch {
		return false;
	}
}

if (require.main === module) {
	const ifStale = process.argv.includes("--if-stale");
	if (ifStale && isCurrent()) process.exit(0);
	if (!hasTypeScript()) {
		console.error(
			"dist/ is missing or older than the sources, and typescript (a dev dependency) is not installed: " +
				"run npm install, then npm start (or npm run dev, which runs the sources)."
		);
		process.exit(1);
	}
	if (ifStale) buildIfStale();
	else withLock(compile);
}
