// Closed-loop load: N callers, each awaiting its previous call before the next. Calls completing inside the
// measurement window (after warm-up) count towards throughput and latency; errors are counted, never retried.
import { performance } from "perf_hooks";
import fs from "fs";

export interface LoadOptions {
	concurrency: number;
	warmupMs: number;
	durationMs: number;
}

export interface WindowHooks {
	// Called when the measured window opens and closes (timers, so within a few ms of the boundaries).
	onMeasureStart?: () => void;
	onMeasureEnd?: () => void;
}

export interface LoadStats {
	requests: number;
	errors: number;
	rps: number;
	p50: number;
	p90: number;
	p99: number;
	max: number;
	firstError?: string;
}

export const DEFAULT_LOAD: LoadOptions = {
	concurrency: Number(process.env.BENCH_CONCURRENCY ?? 50),
	warmupMs: Number(process.env.BENCH_WARMUP_MS ?? 1000),
	durationMs: Number(process.env.BENCH_DURATION_MS ?? 5000)
};

function percentile(sorted: Float64Array, p: number): number {
	if (!sorted.length) return NaN;
	const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
	return sorted[i];
}

const round = (n: number, d = 2) => (Number.isFinite(n) ? Math.round(n * 10 ** d) / 10 ** d : null);

export async function runLoad(
	call: () => Promise<unknown>,
	opts: LoadOptions = DEFAULT_LOAD,
	hooks: WindowHooks = {}
): Promise<LoadStats> {
	const start = performance.now();
	let started = false;
	let ended = false;
	const open = () => !started && ((started = true), hooks.onMeasureStart?.());
	const close = () => started && !ended && ((ended = true), hooks.onMeasureEnd?.());
	const t1 = setTimeout(open, opts.warmupMs);
	const t2 = setTimeout(close, opts.warmupMs + opts.durationMs);
	const measureFrom = start + opts.warmupMs;
	const measureTo = measureFrom + opts.durationMs;
	let lat = new Float64Array(1 << 16);
	let n = 0;
	let errors = 0;
	let firstError: string | undefined;

	const worker = async () => {
		for (;;) {
			const t0 = performance.now();
			// Also from here, not only from the timers: calls that complete without I/O (PGlite runs in-process) can
			// keep the microtask queue busy so long that timers fire late.
			if (t0 >= measureFrom) open();
			if (t0 >= measureTo) {
				close();
				return;
			}
			let failed = false;
			try {
				await call();
			} catch (err: any) {
				failed = true;
				if (!firstError) firstError = `${err?.name ?? "Error"}: ${err?.message ?? err}`;
			}
			const t1 = performance.now();
			if (t1 < measureFrom || t1 >= measureTo) continue;
			if (failed) errors++;
			else {
				if (n === lat.length) {
					const grown = new Float64Array(lat.length * 2);
					grown.set(lat);
					lat = grown;
				}
				lat[n++] = t1 - t0;
			}
		}
	};
	await Promise.all(Array.from({ length: opts.concurrency }, worker));
	clearTimeout(t1);
	clearTimeout(t2);
	open();
	close();

	const sorted = lat.subarray(0, n).sort();
	return {
		requests: n,
		errors,
		rps: round(n / (opts.durationMs / 1000), 0) as number,
		p50: round(percentile(sorted, 50)) as number,
		p90: round(percentile(sorted, 90)) as number,
		p99: round(percentile(sorted, 99)) as number,
		max: round(n ? sorted[n - 1] : NaN) as number,
		firstError
	};
}

// Peak resident set size (VmHWM) of a process, in MiB; null once the process is gone.
export function peakRssMiB(pid: number | "self"): number | null {
	try {
		const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
		return m ? Math.round(Number(m[1]) / 1024) : null;
	} catch {
		return null;
	}
}

// Resets this process's VmHWM to its current RSS, so the next reading is the peak of one scenario only.
export function resetPeakRss(pid: number | "self" = "self"): boolean {
	try {
		fs.writeFileSync(`/proc/${pid}/clear_refs`, "5");
		return true;
	} catch {
		return false;
	}
}

// Open loop at a fixed rate (diagnosis): the same work per second whatever the variant, so CPU time per request
// compares options without the feedback of closed-loop throughput on batching. Returns latency like runLoad.
export async function runFixedRate(
	call: () => Promise<unknown>,
	ratePerSec: number,
	opts: LoadOptions = DEFAULT_LOAD,
	hooks: WindowHooks = {}
): Promise<LoadStats> {
	const tickMs = 10;
	const perTick = ratePerSec / (1000 / tickMs);
	const start = performance.now();
	const measureFrom = start + opts.warmupMs;
	const measureTo = measureFrom + opts.durationMs;
	const lat: number[] = [];
	let errors = 0;
	let firstError: string | undefined;
	let credit = 0;
	const inflight = new Set<Promise<void>>();
	let started = false;
	await new Promise<void>(resolve => {
		const timer = setInterval(() => {
			const now = performance.now();
			if (!started && now >= measureFrom) {
				started = true;
				hooks.onMeasureStart?.();
			}
			if (now >= measureTo) {
				clearInterval(timer);
				hooks.onMeasureEnd?.();
				return resolve();
			}
			credit += perTick;
			for (; credit >= 1; credit--) {
				const t0 = performance.now();
				const p = call().then(
					() => {
						if (t0 >= measureFrom && t0 < measureTo) lat.push(performance.now() - t0);
					},
					(err: any) => {
						if (t0 >= measureFrom && t0 < measureTo) errors++;
						if (!firstError) firstError = `${err?.name}: ${err?.message}`;
					}
				);
				const q = p.finally(() => inflight.delete(q));
				inflight.add(q);
			}
		}, tickMs);
	});
	await Promise.all(inflight);
	const sorted = Float64Array.from(lat).sort();
	return {
		requests: sorted.length,
		errors,
		rps: round(sorted.length / (opts.durationMs / 1000), 0) as number,
		p50: round(percentile(sorted, 50)) as number,
		p90: round(percentile(sorted, 90)) as number,
		p99: round(percentile(sorted, 99)) as number,
		max: round(sorted.length ? sorted[sorted.length - 1] : NaN) as number,
		firstError
	};
}
