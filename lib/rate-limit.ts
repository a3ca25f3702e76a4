// Fixed-window rate limits. In a cluster the counters live in Redis, so every replica shares one count per key;
// embedded, in process memory. One atomic round trip per hit (INCR + PEXPIRE in a Lua script).
import Redis from "ioredis";
import { Errors } from "moleculer";

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

// Leases: at most `max` holders per key at once (a user's open sockets), shared like the counters. A lease expires
// unless renewed, so a replica that dies without cleaning up frees its holders' places within one lease.
export interface Leases {
	// Takes one of `max` places under key for holder (true), or says there is none (false). Holding already renews.
	acquire(key: string, holder: string, max: number, leaseMs: number): Promise<boolean>;
	renew(leases: { key: string; holder: string }[], leaseMs: number): Promise<void>;
	release(key: string, holder: string): Promise<void>;
	close(): Promise<void>;
}

// A sorted set per key, scored by expiry on Redis's clock (the same for every replica).
const NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)";
const ACQUIRE_SCRIPT = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;
const RENEW_SCRIPT = `${NOW}
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

export class RedisLeases implements Leases {
	private redis: Redis;
	constructor(url: string, private prefix: string) {
		this.redis = new Redis(url, { maxRetriesPerRequest: 2, enableOfflineQueue: true });
		this.redis.on("error", () => undefined);
	}

	async acquire(key: string, holder: string, max: number, leaseMs: number) {
		const args = [holder, String(max), String(leaseMs)];
		return (await this.redis.eval(ACQUIRE_SCRIPT, 1, `${this.prefix}:${key}`, ...args)) === 1;
	}

	async renew(leases: { key: string; holder: string }[], leaseMs: number) {
		if (!leases.length) return;
		const batch = this.redis.pipeline();
		for (const l of leases) batch.eval(RENEW_SCRIPT, 1, `${this.prefix}:${l.key}`, l.holder, String(leaseMs));
		await batch.exec();
	}

	async release(key: string, holder: string) {
		await this.redis.zrem(`${this.prefix}:${key}`, holder);
	}

	async close() {
		this.redis.disconnect();
	}
}

export class MemoryLeases implements Leases {
	private held = new Map<string, Map<string, number>>();

	async acquire(key: string, holder: string, max: number, leaseMs: number) {
		const now = Date.now();
		const held = this.held.get(key) ?? new Map<string, number>();
		for (const [h, expires] of held) if (expires <= now) held.delete(h);
		if (!held.has(holder) && held.size >= max) return false;
		held.set(holder, now + leaseMs);
		this.held.set(key, held);
		return true;
	}

	async renew(leases: { key: string; holder: string }[], leaseMs: number) {
		for (const l of leases) {
			const held = this.held.get(l.key);
			if (held?.has(l.holder)) held.set(l.holder, Date.now() + leaseMs);
		}
	}

	async release(key: string, holder: string) {
		const held = this.held.get(key);
		held?.delete(holder);
		if (held && !held.size) this.held.delete(key);
	}

	async close() {}
}

export const rateLimited = (retryAfter: number) =>
	new Errors.MoleculerClientError("too many requests; retry later", 429, "RATE_LIMITED", { retryAfter });

export interface RequestLimitsOptions {
	redisUrl?: string;
	prefix: string;
	perIpPerMinute: number;
	perUserPerMinute: number;
	socketsPerUser: number;
	socketLeaseMs?: number;
}

// The gateway's budgets, one mechanism for REST and the socket bridge: every request, socket handshake and socket
// call is charged to the client's IP and (once known) to its user, on the same counters, whichever replica and
// transport it takes. A limiter that cannot be reached (Redis down) lets requests through rather than refusing all.
export class RequestLimits {
	readonly socketLeaseMs: number;
	private limiter: RateLimiter;
	private leases: Leases;

	constructor(readonly opts: RequestLimitsOptions) {
		this.socketLeaseMs = opts.socketLeaseMs ?? 30_000;
		this.limiter = createRateLimiter(opts.redisUrl, opts.prefix);
		this.leases = opts.redisUrl ? new RedisLeases(opts.redisUrl, opts.prefix) : new MemoryLeases();
	}

	ip(ip: string): Promise<void> {
		return this.charge(`ip:${ip}`, this.opts.perIpPerMinute);
	}

	user(userId: string): Promise<void> {
		return this.charge(`user:${userId}`, this.opts.perUserPerMinute);
	}

	private async charge(key: string, limit: number) {
		const r = await this.limiter.hit(key, limit, 60_000).catch(() => null);
		if (r && !r.allowed) throw rateLimited(r.retryAfterSec);
	}

	// A place for one more open socket of the user, or a 429 naming the limit.
	async openSocket(userId: string, socketId: string): Promise<void> {
		const max = this.opts.socketsPerUser;
		const ok = await this.leases.acquire(`sockets:${userId}`, socketId, max, this.socketLeaseMs).catch(() => true);
		if (!ok)
			throw new Errors.MoleculerClientError(
				`at most ${max} open connections per user; close one (another tab or device) and connect again`,
				429,
				"TOO_MANY_CONNECTIONS",
				{ retryAfter: Math.ceil(this.socketLeaseMs / 1000) }
			);
	}

	renewSockets(sockets: { userId: string; socketId: string }[]): Promise<void> {
		const leases = sockets.map(s => ({ key: `sockets:${s.userId}`, holder: s.socketId }));
		return this.leases.renew(leases, this.socketLeaseMs).catch(() => undefined);
	}

	closeSocket(userId: string, socketId: string): Promise<void> {
		return this.leases.release(`sockets:${userId}`, socketId).catch(() => undefined);
	}

	async close() {
		await Promise.all([this.limiter.close(), this.leases.close()]);
	}
}
