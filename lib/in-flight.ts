// Requests running on this replica, by id, so a cancellation announced to every replica (or a stopping service)
// can abort them where they run; and waiting for work to end, which is what a graceful stop does first.

// Callers waiting for a count of running work to reach zero; the owner calls `notify` whenever the count drops.
export class Idle {
	private waiters: Array<() => void> = [];

	constructor(private readonly busy: () => number) {}

	notify(): void {
		if (this.busy() === 0) for (const resolve of this.waiters.splice(0)) resolve();
	}

	// True once nothing runs, false when `ms` passed first.
	wait(ms: number): Promise<boolean> {
		if (this.busy() === 0) return Promise.resolve(true);
		return new Promise(resolve => {
			const done = () => (clearTimeout(timer), resolve(true));
			const timer = setTimeout(() => {
				this.waiters = this.waiters.filter(w => w !== done);
				resolve(false);
			}, ms);
			this.waiters.push(done);
		});
	}
}

export class InFlight {
	private readonly running = new Map<string, AbortController>();
	private readonly idle = new Idle(() => this.running.size);

	add(id: string, controller: AbortController): void {
		this.running.set(id, controller);
	}

	delete(id: string): void {
		if (this.running.delete(id)) this.idle.notify();
	}

	abort(id: string, reason: unknown): boolean {
		const c = this.running.get(id);
		c?.abort(reason);
		return !!c;
	}

	abortAll(reason: unknown): number {
		for (const c of this.running.values()) c.abort(reason);
		return this.running.size;
	}

	// Resolves true once nothing runs, false when `ms` passed first: a stopping replica lets what it streams finish.
	settled(ms: number): Promise<boolean> {
		return this.idle.wait(ms);
	}

	get size(): number {
		return this.running.size;
	}
}
