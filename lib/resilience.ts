// Resilience helpers every module shares: back-off delays (cockatiel's exponential generator) and trying candidates
// in order, each attempt with its own deadline and the caller's cancellation.
//
// Our retries keep their attempt count outside the process (outbox rows, AMQP redelivery headers, a queued batch),
// so they need the delay for attempt n, not cockatiel's RetryPolicy loop. An attempt's signal must stay linked to
// the caller's after it succeeds (a stream it opened is still cancellable), which cockatiel's TimeoutPolicy undoes
// when `execute` returns, so `firstSuccess` keeps its own few lines; it builds no policy object per request.
import { IExponentialBackoffOptions, noJitterGenerator } from "cockatiel";

// The delay before retry `attempt` (0: the first retry): initialMs, doubled each time, at most maxMs.
export function exponentialDelay(initialMs: number, maxMs: number): (attempt: number) => number {
	const options: IExponentialBackoffOptions<number> = {
		generator: noJitterGenerator,
		initialDelay: initialMs,
		maxDelay: maxMs,
		exponent: 2
	};
	return attempt => noJitterGenerator(Math.max(0, attempt), options)[0];
}

export interface FirstSuccessOptions<C, T> {
	// The caller's cancellation: aborts the running attempt with the same reason.
	signal: AbortSignal;
	// The attempt's deadline, and the reason its signal carries when it passes.
	timeout: (candidate: C) => { ms: number; reason: () => unknown };
	attempt: (candidate: C, control: AbortController) => Promise<T>;
	// A failed attempt: return the error that ends the search, or undefined to go on with the next candidate.
	failed: (candidate: C, err: unknown, control: AbortController) => unknown;
}

export interface Success<C, T> {
	candidate: C;
	result: T;
	// The successful attempt's controller, still aborted by the caller's signal.
	control: AbortController;
}

// Tries candidates in order until one succeeds; `last` is thrown when every one failed (or none was there).
export async function firstSuccess<C, T>(
	candidates: Iterable<C>,
	opts: FirstSuccessOptions<C, T>,
	last: (lastError: unknown) => unknown
): Promise<Success<C, T>> {
	let lastError: unknown;
	for (const candidate of candidates) {
		const control = new AbortController();
		const cancel = () => control.abort(opts.signal.reason);
		opts.signal.addEventListener("abort", cancel);
		const deadline = opts.timeout(candidate);
		const timer = setTimeout(() => control.abort(deadline.reason()), deadline.ms);
		try {
			return { candidate, result: await opts.attempt(candidate, control), control };
		} catch (err) {
			opts.signal.removeEventListener("abort", cancel);
			const stop = opts.failed(candidate, err, control);
			if (stop !== undefined) throw stop;
			lastError = err;
		} finally {
			clearTimeout(timer);
		}
	}
	throw last(lastError);
}

// Runs `fn`; `expired` runs (typically aborting what `fn` waits for) if `fn` has not settled within `ms`. No `ms`:
// no deadline. E.g. a stream's first token, or the silence allowed between two chunks.
export async function withDeadline<T>(ms: number | undefined, expired: () => void, fn: () => Promise<T>): Promise<T> {
	const timer = ms ? setTimeout(expired, ms) : undefined;
	try {
		return await fn();
	} finally {
		if (timer) clearTimeout(timer);
	}
}

// A delay spread ±25% so that retries of many failures at once do not arrive together.
export const jittered = (ms: number) => Math.round(ms * (0.75 + Math.random() * 0.5));

// Runs `fn` with a signal of its own, aborted after `ms` (the attempt fails: timed out) or when `outer` aborts (it
// fails with `stopped()`); an `fn` that ignores its signal is not waited for. One controller and one timer per
// attempt (AbortSignal.any/timeout cost more and linger until collected).
export async function withTimeLimit<T>(
	fn: (signal: AbortSignal) => Promise<T>,
	outer: AbortSignal,
	ms: number,
	stopped: () => Error
): Promise<T> {
	const abort = new AbortController();
	let fail: (err: Error) => void = () => undefined;
	const aborted = new Promise<never>((_, reject) => (fail = reject));
	const stop = (err: Error) => {
		abort.abort(err);
		fail(err);
	};
	const timer = setTimeout(() => stop(new Error(`timed out after ${ms} ms`)), ms);
	const onOuterAbort = () => stop(stopped());
	if (outer.aborted) onOuterAbort();
	else outer.addEventListener("abort", onOuterAbort, { once: true });
	try {
		return await Promise.race([fn(abort.signal), aborted]);
	} finally {
		clearTimeout(timer);
		outer.removeEventListener("abort", onOuterAbort);
	}
}
