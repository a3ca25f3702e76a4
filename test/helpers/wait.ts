// Polling instead of sleeping: wait for a condition, fail with what was last seen.

// Thrown by a probe to stop waiting at once (a node died: what it waits for will not come).
export class Fatal extends Error {}

// Polls `probe` until `done(value)` holds; fails with the last value seen after `timeoutMs`.
export async function waitUntil<T>(
	what: string,
	probe: () => Promise<T>,
	done: (v: T) => boolean,
	timeoutMs = 20_000,
	everyMs = 100
): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	let last: T | undefined;
	let lastErr: unknown;
	for (;;) {
		try {
			last = await probe();
			lastErr = undefined;
			if (done(last)) return last;
		} catch (err) {
			if (err instanceof Fatal) throw err;
			lastErr = err;
		}
		if (Date.now() > deadline)
			throw new Error(
				`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}` +
					(lastErr ? `; last error: ${lastErr}` : "")
			);
		await new Promise(r => setTimeout(r, everyMs));
	}
}
