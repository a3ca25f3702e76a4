// Requests running on this replica, by id, so a cancellation announced to every replica (or a stopping service)
// can abort them where they run.
export class InFlight {
	private readonly running = new Map<string, AbortController>();

	add(id: string, controller: AbortController): void {
		this.running.set(id, controller);
	}

	delete(id: string): void {
		this.running.delete(id);
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

	get size(): number {
		return this.running.size;
	}
}
