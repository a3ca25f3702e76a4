// Child processes of the bench: `node --import tsx <script>` from the project root (a compiled `.js` script with plain
// node, as `npm start` and the image run dist/lib/main.js), output kept (bounded) for errors.
import path from "path";
import { spawn, ChildProcess } from "child_process";

export const ROOT = path.resolve(__dirname, "..");

export interface Child {
	name: string;
	proc: ChildProcess;
	pid: number;
	output: () => string;
	waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpExecArray>;
	stop: (timeoutMs?: number) => Promise<void>;
}

const live = new Set<Child>();

// BENCH_ENV_<NAME>=value is passed to every platform process as <NAME>=value (experiments:
// BENCH_ENV_DATABASE_POOL_SIZE=20, BENCH_ENV_HEAP_GROWING_PERCENT=20).
export const benchEnv: Record<string, string> = Object.fromEntries(
	Object.entries(process.env)
		.filter(([k, v]) => k.startsWith("BENCH_ENV_") && v !== undefined)
		.map(([k, v]) => [k.slice("BENCH_ENV_".length), v as string])
);

// `npm start`'s command line (the image's CMD is the same): its node flags and the compiled main. A bench that
// measures the platform as users run it starts `npmStart.main` with `npmStart.nodeArgs` (after buildIfStale()).
const START = (require("../package.json").scripts.start as string).split(" ").slice(1);
export const npmStart = { main: START[START.length - 1], nodeArgs: START.slice(0, -1) };

export function spawnChild(name: string, script: string, env: Record<string, string>, nodeArgs: string[] = []): Child {
	// BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") is passed to every child, for profiling.
	const extra = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
	const loader = script.endsWith(".ts") ? ["--import", "tsx"] : [];
	const proc = spawn(process.execPath, [...extra, ...nodeArgs, ...loader, script], {
		cwd: ROOT,
		env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/root", ...env },
		stdio: ["ignore", "pipe", "pipe"]
	});
	let out = "";
	const listeners = new Set<() => void>();
	const onData = (d: Buffer) => {
		out += d.toString();
		if (out.length > 200_000) out = out.slice(-100_000);
		for (const l of [...listeners]) l();
	};
	proc.stdout!.on("data", onData);
	proc.stderr!.on("data", onData);
	const exited = new Promise<void>(resolve => proc.once("exit", () => resolve()));
	const gone = () => proc.exitCode !== null || proc.signalCode !== null;

	const child: Child = {
		name,
		proc,
		pid: proc.pid!,
		output: () => out,
		waitFor: (pattern, timeoutMs = 30_000) =>
			new Promise((resolve, reject) => {
				const check = () => {
					const m = pattern.exec(out);
					if (m) {
						done();
						resolve(m);
					} else if (gone()) {
						done();
						reject(new Error(`${name} exited before printing ${pattern}:\n${out.slice(-3000)}`));
					}
				};
				const timer = setTimeout(() => {
					done();
					reject(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms:\n${out.slice(-3000)}`));
				}, timeoutMs);
				const done = () => {
					clearTimeout(timer);
					listeners.delete(check);
					proc.off("exit", check);
				};
				listeners.add(check);
				proc.once("exit", check);
				check();
			}),
		stop: async (timeoutMs = 10_000) => {
			if (!gone()) {
				proc.kill("SIGTERM");
				const timer = setTimeout(() => !gone() && proc.kill("SIGKILL"), timeoutMs);
				await exited;
				clearTimeout(timer);
			}
			live.delete(child);
		}
	};
	live.add(child);
	return child;
}

export async function stopAll() {
	await Promise.all([...live].map(c => c.stop(5000)));
}

// Last resort on an abrupt exit of the bench: no orphan nodes.
process.on("exit", () => {
	for (const c of live) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill("SIGKILL");
});

// In a child: stop the platform broker (and release the database) on SIGTERM/SIGINT, then exit.
export function stopNodeOnSignal(broker: { stop(): Promise<void> }, release: () => Promise<void>) {
	const stop = async () => {
		await broker.stop().catch(() => undefined);
		await release().catch(() => undefined);
		process.exit(0);
	};
	process.on("SIGTERM", stop);
	process.on("SIGINT", stop);
}
