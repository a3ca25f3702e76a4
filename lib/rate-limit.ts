// Rate limits. In a cluster the counters live in Redis, so every replica shares one count per key; embedded, in
// process memory. One atomic round trip per hit or reservation (a Lua script).
// Request limits and token budgets are sliding windows (a window's count plus the previous window's, weighted by how
// much of it the last windowMs still covers): a fixed window let a full burst through at the end of one window and
// another at the start of the next. rate-limiter-flexible (evaluated) only has fixed windows in its
// stores, and cannot reserve against several budgets at once and settle later, so both stay here
// (bench/rate-limit.ts, bench/README.md).
import Redis from "ioredis";
import { Errors } from "moleculer";

export interface RateLimitResult {
	allowed: boolean;
	remaining: number;
	retryAfterSec: number;
}

// Budgets counted in units other than requests (tokens): a call reserves its estimate against every budget that
// applies, all or none at once, before it runs, and settles to what it really used afterwards. Concurrent calls see
// each other's reservations, so together they overshoot a budget by at most what one estimate missed.
export interface Budget {
	key: string;
	limit: number;
}
export interface Reservation {
	keys: string[]; // the budgets' counters of the window the call was admitted in
	amount: number;
}
export type ReserveResult =
	{ allowed: true; reservation: Reservation } | { allowed: false; refused: number; retryAfterSec: number };

export type HitAllResult = { allowed: true } | { allowed: false; refused: number; retryAfterSec: number };

export interface RateLimiter {
	hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult>;
	// One request against several limits at once, in one step (one Redis round trip): counted in all of them when
	// every one has room, in none otherwise; `refused` is the index of the first without room.
	hitAll(budgets: Budget[], windowMs: number): Promise<HitAllResult>;
	// Admitted when every budget has room for `amount`, or has nothing used yet in this window (a call larger than a
	// whole budget may still run alone); `refused` is the index of the first budget without room.
	reserve(budgets: Budget[], amount: number, windowMs: number): Promise<ReserveResult>;
	// Replaces the reservation by the amount really used; a window that has ended meanwhile is left alone.
	settle(reservation: Reservation, used: number): Promise<void>;
	// What is used now, without counting anything: requests as `hit` weighs them (sliding), tokens of this window.
	peek(
		requestKeys: string[],
		tokenKeys: string[],
		windowMs: number
	): Promise<{ requests: number[]; tokens: number[] }>;
	close(): Promise<void>;
}

// A sliding window's weighted count at `now`, as slidingHit sees it before a hit.
function slidingUsed(w: SlidingWindow | undefined, now: number, windowMs: number): number {
	const index = Math.floor(now / windowMs);
	const current = w?.index === index ? w.count : 0;
	const previous = w?.index === index ? w.previous : w?.index === index - 1 ? w.count : 0;
	return Math.ceil(previous * ((windowMs - (now - index * windowMs)) / windowMs) + current);
}

// Token windows are aligned to the clock, so a settlement finds the window its reservation was made in (by name);
// the previous window's counter is kept for one more window, weighted like a request window's.
const windowOf = (key: string, windowMs: number, now: number) => {
	const index = Math.floor(now / windowMs);
	const elapsed = now - index * windowMs;
	return {
		key: `${key}:${index}`,
		previousKey: `${key}:${index - 1}`,
		weight: (windowMs - elapsed) / windowMs,
		elapsed,
		endsAt: (index + 1) * windowMs
	};
};

// A token budget's sliding use: this window's count plus the part of the previous one still in the trailing window.
export const slidingTokens = (current: number, previous: number, weight: number) =>
	Math.ceil(current + previous * weight);

// When `amount` more will fit in a budget of `limit` that a refusal found at (current, previous): once enough of
// the previous window has aged out, or else once this window ages out in the next one.
export function tokenRetryMs(
	current: number,
	previous: number,
	elapsed: number,
	windowMs: number,
	limit: number,
	amount: number
): number {
	const room = limit - amount;
	if (current <= room && previous > 0)
		return Math.max(0, windowMs - (room - current) * (windowMs / previous) - elapsed);
	const inNext = current > 0 && room > 0 ? Math.max(0, windowMs - room * (windowMs / current)) : windowMs;
	return windowMs - elapsed + inNext;
}
const secondsUntil = (at: number, now: number) => Math.max(1, Math.ceil((at - now) / 1000));

// A refused hit is not counted: a client that keeps knocking is admitted again as its earlier hits age out.
export function slidingHit(
	w: SlidingWindow | undefined,
	index: number,
	elapsed: number,
	windowMs: number,
	limit: number
) {
	const current = w?.index === index ? w.count : 0;
	const previous = w?.index === index ? w.previous : w?.index === index - 1 ? w.count : 0;
	const weight = (windowMs - elapsed) / windowMs;
	const allowed = previous * weight + current + 1 <= limit;
	const count = allowed ? current + 1 : current;
	// When there will be room for one more: once enough of the previous window has aged out, or in the next window.
	let retryMs = 0;
	if (!allowed)
		retryMs =
			current + 1 <= limit
				? windowMs - ((limit - current - 1) * windowMs) / previous - elapsed
				: windowMs - elapsed + (count > 0 ? windowMs * (1 - (limit - 1) / count) : 0);
	const remaining = Math.max(0, Math.floor(limit - previous * weight - count));
	return { allowed, window: { index, count, previous }, remaining, retryMs };
}
export interface SlidingWindow {
	index: number;
	count: number;
	previous: number;
}

// The same computation in Redis, on Redis's clock (one for every replica); the key is a hash { i, c, p }.
const HIT_SCRIPT = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local win, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local index = math.floor(now / win)
local elapsed = now - index * win
local h = redis.call('HMGET', KEYS[1], 'i', 'c', 'p')
local i, c, p = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
if i ~= index then
	if i == index - 1 then p = c else p = 0 end
	c = 0
end
local weighted = p * (win - elapsed) / win
local allowed = weighted + c + 1 <= limit
if allowed then c = c + 1 end
redis.call('HSET', KEYS[1], 'i', index, 'c', c, 'p', p)
redis.call('PEXPIRE', KEYS[1], 2 * win)
local retry = 0
if not allowed then
	if c + 1 <= limit then retry = win - (limit - c - 1) * win / p - elapsed
	elseif c > 0 then retry = win - elapsed + win * (1 - (limit - 1) / c)
	else retry = win - elapsed end
end
return { allowed and 1 or 0, math.max(0, math.floor(limit - weighted - c)), math.ceil(retry) }`;

// hitAll: HIT_SCRIPT's check for every key first, then the hits, or none. ARGV: window, then each key's limit.
// Refused: { key's number, retry in ms }.
const HIT_ALL_SCRIPT = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local win = tonumber(ARGV[1])
local index = math.floor(now / win)
local elapsed = now - index * win
local cs, ps = {}, {}
for k = 1, #KEYS do
	local limit = tonumber(ARGV[k + 1])
	local h = redis.call('HMGET', KEYS[k], 'i', 'c', 'p')
	local i, c, p = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
	if i ~= index then
		if i == index - 1 then p = c else p = 0 end
		c = 0
	end
	if p * (win - elapsed) / win + c + 1 > limit then
		local retry
		if c + 1 <= limit then retry = win - (limit - c - 1) * win / p - elapsed
		elseif c > 0 then retry = win - elapsed + win * (1 - (limit - 1) / c)
		else retry = win - elapsed end
		return { k, math.ceil(retry) }
	end
	cs[k], ps[k] = c, p
end
for k = 1, #KEYS do
	redis.call('HSET', KEYS[k], 'i', index, 'c', cs[k] + 1, 'p', ps[k])
	redis.call('PEXPIRE', KEYS[k], 2 * win)
end
return { 0, 0 }`;

// KEYS: per budget, this window's counter then the previous one's; ARGV: amount, time to live (ms), the previous
// window's weight, then each budget's limit. Refused: { budget, its current count, its previous count }.
const RESERVE_SCRIPT = `
local amount, weight = tonumber(ARGV[1]), tonumber(ARGV[3])
local n = #KEYS / 2
for i = 1, n do
	local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
	local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
	local used = math.ceil(current + previous * weight)
	if used > 0 and used + amount > tonumber(ARGV[i + 3]) then return { i, current, previous } end
end
for i = 1, n do
	local key = KEYS[2 * i - 1]
	redis.call('INCRBY', key, amount)
	if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[2]) end
end
return { 0, 0, 0 }`;

const SETTLE_SCRIPT = `
for _, key in ipairs(KEYS) do
	if redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, ARGV[1]) end
end
return 0`;

type SlidingRedis = Redis & {
	slidingHit(key: string, windowMs: string, limit: string): Promise<[number, number, number]>;
	slidingHitAll(numberOfKeys: number, ...keysThenArgs: string[]): Promise<[number, number]>;
	tokensReserve(numberOfKeys: number, ...keysThenArgs: string[]): Promise<[number, number, number]>;
	tokensSettle(numberOfKeys: number, ...keysThenArgs: string[]): Promise<number>;
};

// Auto-pipelining: the commands of one event-loop turn (the hits of requests that arrived together) leave in one
// write and come back in one read, instead of a system call each way per request.
const REDIS_OPTIONS = { maxRetriesPerRequest: 2, enableOfflineQueue: true, enableAutoPipelining: true };

export class RedisRateLimiter implements RateLimiter {
	private redis: SlidingRedis;
	constructor(
		url: string,
		private prefix: string
	) {
		this.redis = new Redis(url, REDIS_OPTIONS) as SlidingRedis;
		this.redis.on("error", () => undefined);
		// EVALSHA: a script's text is sent once, not with every call.
		this.redis.defineCommand("slidingHit", { numberOfKeys: 1, lua: HIT_SCRIPT });
		// The number of keys is the first argument of each call.
		this.redis.defineCommand("slidingHitAll", { lua: HIT_ALL_SCRIPT });
		this.redis.defineCommand("tokensReserve", { lua: RESERVE_SCRIPT });
		this.redis.defineCommand("tokensSettle", { lua: SETTLE_SCRIPT });
	}

	async hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
		const args = [String(windowMs), String(limit)] as const;
		const [allowed, remaining, retryMs] = await this.redis.slidingHit(`${this.prefix}:${key}`, ...args);
		return { allowed: allowed === 1, remaining, retryAfterSec: secondsUntil(retryMs, 0) };
	}

	async hitAll(budgets: Budget[], windowMs: number): Promise<HitAllResult> {
		const keys = budgets.map(b => `${this.prefix}:${b.key}`);
		const args = [String(windowMs), ...budgets.map(b => String(b.limit))];
		const [refused, retryMs] = await this.redis.slidingHitAll(keys.length, ...keys, ...args);
		if (!refused) return { allowed: true };
		return { allowed: false, refused: refused - 1, retryAfterSec: secondsUntil(retryMs, 0) };
	}

	async reserve(budgets: Budget[], amount: number, windowMs: number): Promise<ReserveResult> {
		const now = Date.now();
		const windows = budgets.map(b => windowOf(`${this.prefix}:${b.key}`, windowMs, now));
		const w = windows[0];
		// Kept through the next window, where it is the previous one.
		const ttl = w.endsAt - now + windowMs + 1000;
		const n = Math.ceil(amount);
		const args = [String(n), String(ttl), String(w.weight), ...budgets.map(b => String(b.limit))];
		const keys = windows.flatMap(x => [x.key, x.previousKey]);
		const [refused, current, previous] = await this.redis.tokensReserve(keys.length, ...keys, ...args);
		if (refused) {
			const retryMs = tokenRetryMs(current, previous, w.elapsed, windowMs, budgets[refused - 1].limit, n);
			return { allowed: false, refused: refused - 1, retryAfterSec: secondsUntil(retryMs, 0) };
		}
		return { allowed: true, reservation: { keys: windows.map(x => x.key), amount: n } };
	}

	async settle(reservation: Reservation, used: number) {
		const delta = Math.ceil(used) - reservation.amount;
		const keys = reservation.keys;
		if (delta && keys.length) await this.redis.tokensSettle(keys.length, ...keys, String(delta));
	}

	async peek(requestKeys: string[], tokenKeys: string[], windowMs: number) {
		const [sec, micro] = await this.redis.time();
		const now = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
		const pipeline = this.redis.pipeline();
		for (const k of requestKeys) pipeline.hmget(`${this.prefix}:${k}`, "i", "c", "p");
		// Token windows are on this process's clock, as `reserve` names them.
		const tokenWindows = tokenKeys.map(k => windowOf(`${this.prefix}:${k}`, windowMs, Date.now()));
		for (const w of tokenWindows) pipeline.get(w.key).get(w.previousKey);
		const answers = ((await pipeline.exec()) ?? []).map(([err, v]) => (err ? null : v));
		const requests = requestKeys.map((_, i) => {
			const [wi, c, p] = (answers[i] as (string | null)[] | null) ?? [];
			const w = wi == null ? undefined : { index: Number(wi), count: Number(c ?? 0), previous: Number(p ?? 0) };
			return slidingUsed(w, now, windowMs);
		});
		const tokens = tokenWindows.map((w, i) => {
			const at = requestKeys.length + 2 * i;
			return slidingTokens(Number(answers[at] ?? 0), Number(answers[at + 1] ?? 0), w.weight);
		});
		return { requests, tokens };
	}

	async close() {
		this.redis.disconnect();
	}
}

export class MemoryRateLimiter implements RateLimiter {
	private windows = new Map<string, { count: number; resetAt: number }>();
	private sliding = new Map<string, SlidingWindow & { expiresAt: number }>();
	private sweeper = setInterval(() => {
		const now = Date.now();
		for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
		for (const [k, w] of this.sliding) if (w.expiresAt <= now) this.sliding.delete(k);
	}, 60_000).unref();

	async hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
		const now = Date.now();
		const index = Math.floor(now / windowMs);
		const r = slidingHit(this.sliding.get(key), index, now - index * windowMs, windowMs, limit);
		this.sliding.set(key, { ...r.window, expiresAt: (index + 2) * windowMs });
		return { allowed: r.allowed, remaining: r.remaining, retryAfterSec: secondsUntil(r.retryMs, 0) };
	}

	// Checked for every budget, then counted in all, in one synchronous step.
	async hitAll(budgets: Budget[], windowMs: number): Promise<HitAllResult> {
		const now = Date.now();
		const index = Math.floor(now / windowMs);
		const hits = budgets.map(b =>
			slidingHit(this.sliding.get(b.key), index, now - index * windowMs, windowMs, b.limit)
		);
		const refused = hits.findIndex(h => !h.allowed);
		if (refused >= 0) return { allowed: false, refused, retryAfterSec: secondsUntil(hits[refused].retryMs, 0) };
		budgets.forEach((b, i) => this.sliding.set(b.key, { ...hits[i].window, expiresAt: (index + 2) * windowMs }));
		return { allowed: true };
	}

	private tokenCount(key: string, now: number) {
		const c = this.windows.get(key);
		return c && c.resetAt > now ? c.count : 0;
	}

	// Check and reserve happen in one synchronous step: nothing else runs in between.
	async reserve(budgets: Budget[], amount: number, windowMs: number): Promise<ReserveResult> {
		const now = Date.now();
		const windows = budgets.map(b => windowOf(b.key, windowMs, now));
		const n = Math.ceil(amount);
		const counts = windows.map(w => [this.tokenCount(w.key, now), this.tokenCount(w.previousKey, now)]);
		const used = counts.map(([c, p], i) => slidingTokens(c, p, windows[i].weight));
		const refused = budgets.findIndex((b, i) => used[i] > 0 && used[i] + n > b.limit);
		if (refused >= 0) {
			const [c, p] = counts[refused];
			const retryMs = tokenRetryMs(c, p, windows[refused].elapsed, windowMs, budgets[refused].limit, n);
			return { allowed: false, refused, retryAfterSec: secondsUntil(retryMs, 0) };
		}
		// Kept through the next window, where it is the previous one.
		windows.forEach((w, i) => this.windows.set(w.key, { count: counts[i][0] + n, resetAt: w.endsAt + windowMs }));
		return { allowed: true, reservation: { keys: windows.map(w => w.key), amount: n } };
	}

	async settle(reservation: Reservation, used: number) {
		const now = Date.now();
		for (const key of reservation.keys) {
			const c = this.windows.get(key);
			if (c && c.resetAt > now) c.count += Math.ceil(used) - reservation.amount;
		}
	}

	async peek(requestKeys: string[], tokenKeys: string[], windowMs: number) {
		const now = Date.now();
		const requests = requestKeys.map(k => slidingUsed(this.sliding.get(k), now, windowMs));
		const tokens = tokenKeys.map(k => {
			const w = windowOf(k, windowMs, now);
			return slidingTokens(this.tokenCount(w.key, now), this.tokenCount(w.previousKey, now), w.weight);
		});
		return { requests, tokens };
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

type LeaseRedis = Redis & {
	leaseAcquire(key: string, holder: string, max: string, leaseMs: string): Promise<number>;
	leaseRenew(key: string, holder: string, leaseMs: string): Promise<number>;
};

export class RedisLeases implements Leases {
	private redis: LeaseRedis;
	constructor(
		url: string,
		private prefix: string
	) {
		this.redis = new Redis(url, REDIS_OPTIONS) as LeaseRedis;
		this.redis.on("error", () => undefined);
		this.redis.defineCommand("leaseAcquire", { numberOfKeys: 1, lua: ACQUIRE_SCRIPT });
		this.redis.defineCommand("leaseRenew", { numberOfKeys: 1, lua: RENEW_SCRIPT });
	}

	async acquire(key: string, holder: string, max: number, leaseMs: number) {
		return (await this.redis.leaseAcquire(`${this.prefix}:${key}`, holder, String(max), String(leaseMs))) === 1;
	}

	async renew(leases: { key: string; holder: string }[], leaseMs: number) {
		if (!leases.length) return;
		// Auto-pipelined: one write for all of them.
		await Promise.all(leases.map(l => this.redis.leaseRenew(`${this.prefix}:${l.key}`, l.holder, String(leaseMs))));
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

	// Both of a known caller's limits in one step (one Redis round trip), on the same counters as ip() and user():
	// counted in both when both have room, in neither otherwise.
	async ipAndUser(ip: string, userId: string): Promise<void> {
		const budgets = [
			{ key: `ip:${ip}`, limit: this.opts.perIpPerMinute },
			{ key: `user:${userId}`, limit: this.opts.perUserPerMinute }
		];
		const r = await this.limiter.hitAll(budgets, 60_000).catch(() => null);
		if (r && !r.allowed) throw rateLimited(r.retryAfterSec);
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
