// A stdio transport for MCP servers that the platform can always clean up after. The SDK's StdioClientTransport
// spawns the command as a child of ours in our process group and signals only its pid: a server that starts its own
// children (npx, a shell script, a Python launcher) leaves them running when it is closed or crashes. Here every
// server is the leader of its own process group (detached), closing signals the whole group (TERM, then KILL), and
// the child starts with an explicit, minimal environment and kernel resource limits (prlimit), never the platform's.
import { spawn, type ChildProcess } from "child_process";
import os from "os";
import path from "path";
import { ReadBuffer, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

export interface StdioLimits {
	memoryMb: number; // address space (prlimit --as), 0: none
	cpuSeconds: number; // prlimit --cpu, 0: none
	maxFiles: number; // prlimit --nofile, 0: the platform's
}

export interface StdioSpec {
	command: string;
	args: string[];
	env: Record<string, string>; // the server's own variables, secrets resolved
	cwd?: string;
	limits: StdioLimits;
}

// What every stdio server gets besides its own variables: enough to find node/python and write a temp file.
export function baseEnv(): Record<string, string> {
	return {
		PATH: [path.dirname(process.execPath), "/usr/local/bin", "/usr/bin", "/bin"].join(":"),
		HOME: os.tmpdir(),
		TMPDIR: os.tmpdir(),
		LANG: "C.UTF-8"
	};
}

// prlimit execs the command in place (same pid, same process group), so the limits hold for the server and,
// inherited, for whatever it starts.
export function spawnArgs(spec: StdioSpec): { file: string; args: string[] } {
	const l = spec.limits;
	const limits = [
		l.memoryMb > 0 ? `--as=${l.memoryMb * 1024 * 1024}` : "",
		l.cpuSeconds > 0 ? `--cpu=${l.cpuSeconds}` : "",
		l.maxFiles > 0 ? `--nofile=${l.maxFiles}` : ""
	].filter(Boolean);
	if (!limits.length) return { file: spec.command, args: spec.args };
	return { file: "prlimit", args: [...limits, "--", spec.command, ...spec.args] };
}

// Signals the whole group; ESRCH (already gone) is the normal end.
export function killGroup(pid: number, signal: NodeJS.Signals): boolean {
	try {
		process.kill(-pid, signal);
		return true;
	} catch {
		return false;
	}
}

export function groupAlive(pid: number): boolean {
	try {
		process.kill(-pid, 0);
		return true;
	} catch {
		return false;
	}
}

const STDERR_KEEP = 4096;
const KILL_GRACE_MS = 2000;

export class GroupStdioTransport implements Transport {
	onclose?: () => void;
	onerror?: (error: Error) => void;
	onmessage?: (message: JSONRPCMessage) => void;

	private child?: ChildProcess;
	private readonly buffer = new ReadBuffer();
	private stderrTail = "";
	private exited?: Promise<void>;
	private closing = false;

	constructor(private readonly spec: StdioSpec) {}

	get pid(): number | undefined {
		return this.child?.pid;
	}

	// The last lines the server wrote to stderr (for an error message; the caller redacts it).
	get stderr(): string {
		return this.stderrTail;
	}

	async start(): Promise<void> {
		const { file, args } = spawnArgs(this.spec);
		const child = spawn(file, args, {
			env: { ...baseEnv(), ...this.spec.env },
			cwd: this.spec.cwd,
			detached: true,
			stdio: ["pipe", "pipe", "pipe"],
			windowsHide: true
		});
		this.child = child;
		this.exited = new Promise(resolve => child.once("close", () => resolve()));
		await new Promise<void>((resolve, reject) => {
			child.once("spawn", resolve);
			child.once("error", reject);
		});
		child.on("error", err => this.onerror?.(err));
		child.once("exit", () => {
			// The leader is gone; anything it left in its group goes with it.
			if (child.pid) killGroup(child.pid, "SIGKILL");
		});
		child.once("close", () => {
			this.child = undefined;
			this.onclose?.();
		});
		child.stdout!.on("data", (chunk: Buffer) => {
			this.buffer.append(chunk);
			for (;;) {
				let message: JSONRPCMessage | null;
				try {
					message = this.buffer.readMessage();
				} catch (err) {
					this.onerror?.(err as Error);
					continue;
				}
				if (!message) break;
				this.onmessage?.(message);
			}
		});
		child.stderr!.on("data", (chunk: Buffer) => {
			this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-STDERR_KEEP);
		});
		for (const s of [child.stdin!, child.stdout!, child.stderr!]) s.on("error", err => this.onerror?.(err));
	}

	send(message: JSONRPCMessage): Promise<void> {
		const stdin = this.child?.stdin;
		if (!stdin || !stdin.writable) return Promise.reject(new Error("the MCP server's process is not running"));
		return new Promise(resolve => {
			if (stdin.write(serializeMessage(message))) resolve();
			else stdin.once("drain", resolve);
		});
	}

	// Closes stdin (a well-behaved server exits), then TERM to the group, then KILL; resolves once the leader is
	// reaped and the group is empty.
	async close(): Promise<void> {
		const child = this.child;
		if (!child?.pid || this.closing) return this.exited;
		this.closing = true;
		const pid = child.pid;
		child.stdin?.end();
		killGroup(pid, "SIGTERM");
		const timer = setTimeout(() => killGroup(pid, "SIGKILL"), KILL_GRACE_MS);
		await this.exited;
		clearTimeout(timer);
		killGroup(pid, "SIGKILL");
		this.buffer.clear();
	}
}
