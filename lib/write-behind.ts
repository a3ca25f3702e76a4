// Rows written after the answer, in batches: `add(item)` queues it; a batch is written once `ms` have passed since the
// first waiting item (or at once when `max` wait), one batch at a time, and what arrives while one is written goes
// next without waiting again. A failed batch is written again item by item, so one bad row cannot lose its
// neighbours; an item that fails alone goes to `failed`. `flush()` resolves once everything added so far is written.
// The items live in process memory until written: for records whose loss on a crash is acceptable (logs).
export interface WriteBehindOptions<T> {
	max: number;
	ms: number;
	write(items: T[]): Promise<void>;
	failed(item: T, err: Error): void;
}

export class WriteBehind<T> {
	private waiting: T[] = [];
	private timer?: NodeJS.Timeout;
	private running?: Promise<void>;

	constructor(private readonly o: WriteBehindOptions<T>) {}

	get pending(): number {
		return this.waiting.length + (this.running ? 1 : 0);
	}

	add(item: T) {
		this.waiting.push(item);
		if (this.running) return;
		if (this.waiting.length >= this.o.max) return void this.run();
		this.timer ??= setTimeout(() => void this.run(), this.o.ms);
	}

	async flush(): Promise<void> {
		while (this.running || this.waiting.length) await (this.running ?? this.run());
	}

	private run(): Promise<void> {
		if (this.timer) clearTimeout(this.timer);
		this.timer = undefined;
		if (this.running) return this.running;
		const batch = this.waiting.splice(0, this.o.max);
		if (!batch.length) return Promise.resolve();
		this.running = this.o
			.write(batch)
			.catch(async () => {
				for (const item of batch) await this.o.write([item]).catch(err => this.o.failed(item, err as Error));
			})
			.finally(() => {
				this.running = undefined;
				if (this.waiting.length) void this.run();
			});
		return this.running;
	}
}
