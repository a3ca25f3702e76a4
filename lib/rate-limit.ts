// Fixed-window rate limits. In a cluster the counters live in Redis, so every replica shares one count per key;
// embedded, in process memory. One atomic round trip per hit (INCR + PEXPIRE in a Lua script).
import Redis from "ioredis";

export interface RateLimitResult {
	allowed: boolean;
	remaining: number;
	retryAfterSec: number;
}

export interface RateLimiter {
	hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult>;
	// Budgets counted in units other than requests (tokens): read the window's total, add to it afterwards.
	peek(key: string): Promise<{ used: number; retryAfterSec: number }>;
	add(key: string, amount: number, windowMs: number): Promise<void>;
	close(): Promise<void>;
}

const HIT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
return { n, ttl }`;

const ADD_SCRIPT = `
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

export class RedisRateLimiter implements RateLimiter {
	private redis: Redis;
	constructor(url: string, private prefix: string) {
		this.redis = new Redis(url, { maxRetriesPerRequest: 2, enableOfflineQueue: true });
		this.redis.on("error", () => undefined);
	}

	async hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
		const [n, ttl] = (await this.redis.eval(HIT_SCRIPT, 1, `${this.prefix}:${key}`, String(windowMs))) as [number, number];
		return { allowed: n <= limit, remaining: Math.max(0, limit - n), retryAfterSec: Math.max(1, Math.ceil(ttl / 1000)) };
	}

	async peek(key: string) {
		const [v, ttl] = await this.redis.multi().get(`${this.prefix}:${key}`).pttl(`${this.prefix}:${key}`).exec().then(r => (r ?? []).map(x => x[1]) as [string | null, number]);
		return { used: Number(v ?? 0), retryAfterSec: Math.max(1, Math.ceil(Math.max(0, ttl) / 1000)) };
	}

	async add(key: string, amount: number, windowMs: number) {
		if (amount > 0) await this.redis.eval(ADD_SCRIPT, 1, `${this.prefix}:${key}`, String(windowMs), String(Math.ceil(amount)));
	}

	async close() {
		this.redis.disconnect();
	}
}

export class MemoryRateLimiter implements RateLimiter {
	private windows = new Map<string, { count: number; resetAt: number }>();
	private sweeper = setInterval(() => {
		const now = Date.now();
		for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
	}, 60_000).unref();

	async hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
		const now = Date.now();
		let w = this.windows.get(key);
		if (!w || w.resetAt <= now) {
			w = { count: 0, resetAt: now + windowMs };
			this.windows.set(key, w);
		}
		w.count++;
		return { allowed: w.count <= limit, remaining: Math.max(0, limit - w.count), retryAfterSec: Math.max(1, Math.ceil((w.resetAt - now) / 1000)) };
	}

	async peek(key: string) {
		const w = this.windows.get(key);
		const now = Date.now();
		if (!w || w.resetAt <= now) return { used: 0, retryAfterSec: 1 };
		return { used: w.count, retryAfterSec: Math.max(1, Math.ceil((w.resetAt - now) / 1000)) };
	}

	async add(key: string, amount: number, windowMs: number) {
		const now = Date.now();
		let w = this.windows.get(key);
		if (!w || w.resetAt <= now) this.windows.set(key, (w = { count: 0, resetAt: now + windowMs }));
		w.count += Math.ceil(amount);
	}

	async close() {
		clearInterval(this.sweeper);
	}
}

export function createRateLimiter(redisUrl: string | undefined, prefix: string): RateLimiter {
	return redisUrl ? new RedisRateLimiter(redisUrl, prefix) : new MemoryRateLimiter();
}
