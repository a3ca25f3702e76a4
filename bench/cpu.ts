// CPU time from /proc: per process, per group of processes (RabbitMQ's beam.smp, PostgreSQL's backends), and how
// busy the whole machine was. On a shared 2-core box this tells "slow because of work" from "slow because of waiting".
import fs from "fs";
import os from "os";
import { DEFAULT_LOAD, LoadOptions, LoadStats, runFixedRate, runLoad } from "./load";

export const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

export function cpuTicks(pid: number | "self"): number {
	const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
	return Number(f[11]) + Number(f[12]);
}

export function pidsMatching(re: RegExp): number[] {
	const out: number[] = [];
	for (const d of fs.readdirSync("/proc")) {
		if (!/^\d+$/.test(d)) continue;
		try {
			if (re.test(fs.readFileSync(`/proc/${d}/cmdline`, "utf8"))) out.push(Number(d));
		} catch {
			/* gone */
		}
	}
	return out;
}

function machineTicks(): { busy: number; idle: number } {
	const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
	const idle = f[3] + f[4];
	return { busy: f.reduce((a, b) => a + b, 0) - idle, idle };
}

export const RABBITMQ = /beam\.smp/;
export const POSTGRES = /^postgres/;

// Starts counting; stop() returns CPU µs used by each named process or group, and the machine's busy %.
export function cpuMeter(targets: Record<string, number | "self" | RegExp>) {
	const start = new Map<string, Map<number | "self", number>>();
	const snapshot = (t: number | "self" | RegExp) => {
		const m = new Map<number | "self", number>();
		for (const pid of t instanceof RegExp ? pidsMatching(t) : [t])
			try {
				m.set(pid, cpuTicks(pid));
			} catch {
				/* gone */
			}
		return m;
	};
	for (const [name, t] of Object.entries(targets)) start.set(name, snapshot(t));
	const m0 = machineTicks();
	const t0 = process.hrtime.bigint();
	return {
		stop(): { cpuUs: Record<string, number>; machineBusyPct: number; windowUs: number } {
			const m1 = machineTicks();
			const cpuUs: Record<string, number> = {};
			for (const [name, t] of Object.entries(targets)) {
				let ticks = 0;
				for (const [pid, v] of snapshot(t)) ticks += v - (start.get(name)!.get(pid) ?? 0);
				cpuUs[name] = ticks * TICK_US;
			}
			const busy = m1.busy - m0.busy;
			const all = busy + m1.idle - m0.idle;
			return {
				cpuUs,
				machineBusyPct: all ? Math.round((100 * busy) / all) : 0,
				windowUs: Number(process.hrtime.bigint() - t0) / 1000
			};
		}
	};
}

export interface CpuStats {
	// CPU time per measured request (µs), by process or group.
	cpuUsPerRequest: Record<string, number>;
	machineBusyPct: number;
	// CPU the rest of the machine used meanwhile (cores): other processes than those measured. On a shared machine
	// a run with a high value is a noisy run.
	otherLoadCores: number;
}

export async function runLoadWithCpu(
	call: () => Promise<unknown>,
	targets: Record<string, number | "self" | RegExp>,
	opts: LoadOptions = DEFAULT_LOAD,
	// A fixed request rate instead of closed-loop callers (diagnosis only).
	ratePerSec?: number
): Promise<LoadStats & CpuStats> {
	let meter: ReturnType<typeof cpuMeter> | undefined;
	let result: { cpuUs: Record<string, number>; machineBusyPct: number; windowUs: number } | undefined;
	const hooks = {
		onMeasureStart: () => (meter = cpuMeter(targets)),
		onMeasureEnd: () => (result = meter?.stop())
	};
	const stats = ratePerSec ? await runFixedRate(call, ratePerSec, opts, hooks) : await runLoad(call, opts, hooks);
	const n = Math.max(1, stats.requests + stats.errors);
	const cpuUsPerRequest: Record<string, number> = {};
	for (const [k, v] of Object.entries(result?.cpuUs ?? {})) cpuUsPerRequest[k] = Math.round(v / n);
	const cores = os.availableParallelism?.() ?? os.cpus().length;
	const ours = result ? Object.values(result.cpuUs).reduce((a, b) => a + b, 0) / result.windowUs : 0;
	const otherLoadCores = result
		? Math.max(0, Math.round(((result.machineBusyPct / 100) * cores - ours) * 100) / 100)
		: 0;
	return { ...stats, cpuUsPerRequest, machineBusyPct: result?.machineBusyPct ?? 0, otherLoadCores };
}
