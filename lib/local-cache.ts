// A process-local cache (lru-cache: bounded, with a time to live) whose entries are dropped when a broadcast says the
// data changed. Never shared through Redis: what it holds (secret values, identities) must not leave the process.
import { LRUCache } from "lru-cache";

export interface LocalCacheOptions {
	max: number;
	ttlMs: number;
}

export class LocalCache<V extends NonNullable<unknown>> {
	private readonly lru: LRUCache<string, V>;

	constructor(opts: LocalCacheOptions) {
		this.lru = new LRUCache<string, V>({ max: opts.max, ttl: opts.ttlMs });
	}

	get(key: string): V | undefined {
		return this.lru.get(key);
	}

	has(key: string): boolean {
		return this.lru.has(key);
	}

	// `ttlMs` shortens the entry's life (e.g. a credential that expires sooner); never lengthens it.
	set(key: string, value: V, ttlMs?: number): void {
		this.lru.set(key, value, ttlMs !== undefined ? { ttl: Math.max(1, Math.min(ttlMs, this.lru.ttl)) } : undefined);
	}

	// The cached value, or what `load` returns, kept for next time. Concurrent misses each load (no sharing).
	async getOrLoad(key: string, load: () => Promise<V>): Promise<V> {
		const hit = this.lru.get(key);
		if (hit !== undefined) return hit;
		const value = await load();
		this.set(key, value);
		return value;
	}

	delete(key: string): void {
		this.lru.delete(key);
	}

	dropWhere(stale: (value: V, key: string) => boolean): void {
		for (const [key, value] of this.lru.entries()) if (stale(value, key)) this.lru.delete(key);
	}

	clear(): void {
		this.lru.clear();
	}

	get size(): number {
		return this.lru.size;
	}
}
