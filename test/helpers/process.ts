// Platform nodes as real child processes (`node --import tsx lib/main.ts`), as an operator would run them; `script`
// (a compiled main.js) runs with plain node instead.
import { spawn, ChildProcess } from "child_process";
import { ROOT } from "./broker";

export interface NodeProcess {
	proc: ChildProcess;
	nodeID: string;
	output: () => string;
	waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<void>;
	exited: Promise<number | null>;
	stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

export const TEST_JWT_SECRET = "test-secret-test-secret-test-secret-0123";
export const TEST_TRANSIT_KEY = "test-transit-key-test-transit-key-0123";
// Every node gets the root unless a test says otherwise (test/secrets/secrets.cluster.spec.ts gives a node only
// its own credential, as an operator would).
export const TEST_SERVICE_IDENTITY_KEY = "test-service-identity-key-0123456789abcdef";

export function startNode(
	env: Record<string, string>,
	opts: { waitUp?: boolean; script?: string } = {}
): NodeProcess & { ready: Promise<void> } {
	const nodeID = env.NODE_ID ?? `node-${Math.random().toString(36).slice(2, 8)}`;
	const proc = spawn(process.execPath, opts.script ? [opts.script] : ["--import", "tsx", "lib/main.ts"], {
		cwd: ROOT,
		env: {
			PATH: process.env.PATH!,
			HOME: process.env.HOME ?? "/root",
			JWT_SECRET: TEST_JWT_SECRET,
			TRANSIT_KEY: TEST_TRANSIT_KEY,
			SERVICE_IDENTITY_KEY: TEST_SERVICE_IDENTITY_KEY,
			LOG_LEVEL: "info",
			NODE_ID: nodeID,
			...env
		},
		stdio: ["ignore", "pipe", "pipe"]
	});
	let out = "";
	const listeners = new Set<() => void>();
	const onData = (d: Buffer) => {
		out += d.toString();
		for (const l of listeners) l();
	};
	proc.stdout!.on("data", onData);
	proc.stderr!.on("data", onData);
	const exited = new Promise<number | null>(resolve => proc.once("exit", code => resolve(code)));

	const waitFor = (pattern: RegExp, timeoutMs = 30_000) =>
		new Promise<void>((resolve, reject) => {
			const check = () => {
				if (pattern.test(out)) {
					cleanup();
					resolve();
				}
			};
			const timer = setTimeout(() => {
				cleanup();
				reject(
					new Error(
						`node ${nodeID} did not print ${pattern} within ${timeoutMs} ms. Output:\n${out.slice(-3000)}`
					)
				);
			}, timeoutMs);
			const onExit = () => {
				setTimeout(() => {
					if (pattern.test(out)) return;
					cleanup();
					reject(new Error(`node ${nodeID} exited before printing ${pattern}. Output:\n${out.slice(-3000)}`));
				}, 50);
			};
			const cleanup = () => {
				clearTimeout(timer);
				listeners.delete(check);
				proc.off("exit", onExit);
			};
			listeners.add(check);
			proc.once("exit", onExit);
			check();
		});

	const ready = opts.waitUp === false ? Promise.resolve() : waitFor(/Coder IDE node .* up/);
	return {
		proc,
		nodeID,
		output: () => out,
		waitFor,
		exited,
		ready,
		stop: async (signal: NodeJS.Signals = "SIGTERM") => {
			if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
			return exited;
		}
	};
}
