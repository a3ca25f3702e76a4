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
	close(): Promise<void>;
}

const HIT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
return { n, ttl }`;

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

	async close() {
		clearInterval(this.sweeper);
	}
}

export function createRateLimiter(redisUrl: string | undefined, prefix: string): RateLimiter {
	return redisUrl ? new RedisRateLimiter(redisUrl, prefix) : new MemoryRateLimiter();
}
