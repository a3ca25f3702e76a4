// Summarises a V8 .cpuprofile (from BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=…"): self time by function and
// by package/file, and inclusive time of selected functions.
// Usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [topN] [inclusive-name-regex]
// PROF_FROM / PROF_TO (seconds since the profile started) keep only that window; a per-second busy histogram
// is printed to choose it.
import fs from "fs";

const [file, topArg, inclArg] = process.argv.slice(2);
const top = Number(topArg ?? 30);
const prof = JSON.parse(fs.readFileSync(file, "utf8"));
const nodes = new Map<number, any>(prof.nodes.map((n: any) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const self = new Map<number, number>();
const dts: number[] = prof.timeDeltas;
const from = Number(process.env.PROF_FROM ?? 0) * 1e6;
const to = Number(process.env.PROF_TO ?? Infinity) * 1e6;
const busy: number[] = [];
let clock = 0;
for (let i = 0; i < prof.samples.length; i++) {
	clock += dts[i] ?? 0;
	const sec = Math.floor(clock / 1e6);
	const idle = nodes.get(prof.samples[i]).callFrame.functionName === "(idle)";
	busy[sec] = (busy[sec] ?? 0) + (idle ? 0 : (dts[i] ?? 0));
	if (clock < from || clock > to) continue;
	self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (dts[i] ?? 0));
}
console.log("busy % per second: " + Array.from(busy, (b, i) => `${i}:${Math.round((b ?? 0) / 1e4)}`).join(" "));
const total = [...self.values()].reduce((a, b) => a + b, 0);

const where = (n: any) => {
	const url: string = n.callFrame.url || "";
	const m = /node_modules\/((?:@[^/]+\/)?[^/]+)(\/src\/[^/]+)?/.exec(url);
	if (m) return process.env.PROF_SUBDIRS && m[2] ? m[1] + m[2] : m[1];
	if (url.startsWith("node:")) return url;
	return (
		url.replace(/^file:\/\//, "").replace(process.cwd() + "/", "") || `(${n.callFrame.functionName || "program"})`
	);
};

const byFn = new Map<string, number>();
const byPkg = new Map<string, number>();
for (const [id, t] of self) {
	const n = nodes.get(id);
	const key = `${n.callFrame.functionName || "(anonymous)"} ${where(n)}:${n.callFrame.lineNumber + 1}`;
	byFn.set(key, (byFn.get(key) ?? 0) + t);
	byPkg.set(where(n), (byPkg.get(where(n)) ?? 0) + t);
}
const pct = (t: number) => ((100 * t) / total).toFixed(1).padStart(5) + "%";
const print = (title: string, m: Map<string, number>) => {
	console.log(`\n${title}`);
	for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);
};
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`);
print("self time by package / file", byPkg);
print("self time by function", byFn);

if (inclArg) {
	const re = new RegExp(inclArg);
	const incl = new Map<string, number>();
	for (const [id, t] of self) {
		const seen = new Set<string>();
		for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
			const n = nodes.get(cur);
			const name = `${n.callFrame.functionName || "(anonymous)"} ${where(n)}:${n.callFrame.lineNumber + 1}`;
			if (re.test(name) && !seen.has(name)) {
				seen.add(name);
				incl.set(name, (incl.get(name) ?? 0) + t);
			}
		}
	}
	print(`inclusive time of /${inclArg}/`, incl);
}

// PROF_CALLERS=<regex>: the most frequent call stacks (PROF_DEPTH frames, default 8) ending in a matching leaf.
if (process.env.PROF_CALLERS) {
	const re = new RegExp(process.env.PROF_CALLERS);
	const depth = Number(process.env.PROF_DEPTH ?? 8);
	const stacks = new Map<string, number>();
	for (const [id, t] of self) {
		const n = nodes.get(id);
		if (!re.test(`${n.callFrame.functionName} ${where(n)}`)) continue;
		const frames: string[] = [];
		for (let cur: number | undefined = id; cur !== undefined && frames.length < depth; cur = parent.get(cur)) {
			const c = nodes.get(cur);
			frames.push(`${c.callFrame.functionName || "(anon)"}@${where(c)}:${c.callFrame.lineNumber + 1}`);
		}
		const key = frames.join(" < ");
		stacks.set(key, (stacks.get(key) ?? 0) + t);
	}
	print(`stacks ending in /${process.env.PROF_CALLERS}/`, stacks);
}
