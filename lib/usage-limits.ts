// Quotas and budgets counted where every AI replica sees them: per limit and period, what settled requests used and
// what running requests hold. A request reserves its estimate against every limit that applies to it, all or none,
// in one atomic step (a Lua script in Redis; one synchronous step in process memory when embedded), and settles to
// what it really used. Concurrent requests see each other's reservations, so together they overshoot a limit by at
// most what their estimates missed. A reservation expires (a replica that died mid-request frees its share), and a
// counter Redis lost is rebuilt from the durable consumption (usage_limit_consumption) before anything is reserved.
import Redis from "ioredis";

export type LimitKind = "quota" | "budget";
export type Metric = "tokens" | "requests" | "tool_calls" | "cost";
export type Scope = "organization" | "team" | "user" | "api_key";
export type Period = "day" | "month";

// One enabled quota or budget, as the AI replicas keep it in memory. `amount` is in the metric's unit (dollars for a
// budget). A team limit carries its members: the request's user tells whether it applies.
export interface LimitDef {
	id: string;
	kind: LimitKind;
	name: string;
	metric: Metric;
	scope: Scope;
	subjectId: string | null;
	period: Period;
	amount: number;
	thresholds: number[];
	members?: string[];
}

// What a request is charged, per metric (cost in dollars).
export type Amounts = Record<Metric, number>;

// What one metered request (ai.usage.recorded) used of each metric: the ai settles with it, the usage module counts
// it durably, so both sides agree.
export function amountsOf(e: { inputTokens: number; outputTokens: number; toolCalls: number; cost: number }): Amounts {
	return { tokens: e.inputTokens + e.outputTokens, requests: 1, tool_calls: e.toolCalls, cost: e.cost };
}

// Counters are integers: dollars are counted in billionths (a cheap request costs a few millionths).
const COST_SCALE = 1e9;
export const toUnits = (metric: Metric, v: number) => (metric === "cost" ? Math.round(v * COST_SCALE) : Math.round(v));
export const fromUnits = (metric: Metric, v: number) => (metric === "cost" ? v / COST_SCALE : v);

// Periods are UTC calendar days and months.
export function periodStart(period: Period, at: Date = new Date()): Date {
	const y = at.getUTCFullYear(),
		m = at.getUTCMonth();
	return period === "day" ? new Date(Date.UTC(y, m, at.getUTCDate())) : new Date(Date.UTC(y, m, 1));
}
export function periodEnd(period: Period, start: Date): Date {
	const y = start.getUTCFullYear(),
		m = start.getUTCMonth();
	return period === "day" ? new Date(Date.UTC(y, m, start.getUTCDate() + 1)) : new Date(Date.UTC(y, m + 1, 1));
}

// Whether a limit counts a request of this caller.
export function appliesTo(l: LimitDef, who: { userId?: string; apiKeyId?: string }): boolean {
	if (l.scope === "organization") return true;
	if (l.scope === "user") return !!who.userId && l.subjectId === who.userId;
	if (l.scope === "api_key") return !!who.apiKeyId && l.subjectId === who.apiKeyId;
	return !!who.userId && !!l.members?.includes(who.userId);
}

// One limit's counter in one period.
export interface Counter {
	limitId: string;
	periodStart: number; // ms since the epoch
	expiresAt: number; // kept a day past the period's end, then dropped
	amount: number; // what this request reserves (units)
	max: number; // the limit (units)
}
export interface CounterState {
	used: number;
	reserved: number;
}
export type ReserveAnswer =
	| { allowed: true }
	| { allowed: false; refused: number; state: CounterState }
	| { allowed: false; missing: number[] };

export interface UsageLimitStore {
	reserve(id: string, counters: Counter[], ttlMs: number): Promise<ReserveAnswer>;
	// Drops the reservation `id` (if still held) and adds `used` (units) to each counter it names.
	settle(id: string, counters: { limitId: string; periodStart: number; used: number }[]): Promise<void>;
	// Seeds counters that do not exist (Redis lost them, or a new period) with their durable consumption.
	init(counters: { limitId: string; periodStart: number; expiresAt: number; used: number }[]): Promise<void>;
	peek(counters: { limitId: string; periodStart: number }[]): Promise<(CounterState | null)[]>;
	close(): Promise<void>;
}

const NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)";
// Frees reservations past their expiry (a replica that crashed never settles them). KEYS[h], KEYS[z] in scope.
const PURGE = `
local function purge(h, z, now)
	for _, r in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', now)) do
		local a = tonumber(redis.call('HGET', h, 'r:' .. r) or '0')
		redis.call('HINCRBY', h, 'reserved', -a)
		redis.call('HDEL', h, 'r:' .. r)
		redis.call('ZREM', z, r)
	end
end`;

// KEYS: per counter, its hash { used, reserved, r:<id> } and its expiry set; ARGV: id, ttl, then per counter
// amount, max, expiresAt. Answers { 0 } (reserved), { i, used, reserved } (counter i refused), or { -1, i… }
// (counters without state: rebuild them, then ask again).
const RESERVE_SCRIPT = `${NOW}${PURGE}
local id, ttl = ARGV[1], tonumber(ARGV[2])
local n = #KEYS / 2
local missing = {}
for i = 1, n do
	if redis.call('EXISTS', KEYS[2 * i - 1]) == 0 then missing[#missing + 1] = i end
end
if #missing > 0 then return { -1, unpack(missing) } end
for i = 1, n do
	local h, z = KEYS[2 * i - 1], KEYS[2 * i]
	purge(h, z, now)
	local used = tonumber(redis.call('HGET', h, 'used') or '0')
	local reserved = tonumber(redis.call('HGET', h, 'reserved') or '0')
	local amount, max = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
	if used + reserved + amount > max or used + reserved >= max then return { i, used, reserved } end
end
for i = 1, n do
	local h, z = KEYS[2 * i - 1], KEYS[2 * i]
	local amount = tonumber(ARGV[3 * i])
	if amount > 0 then
		redis.call('HSET', h, 'r:' .. id, amount)
		redis.call('HINCRBY', h, 'reserved', amount)
		redis.call('ZADD', z, now + ttl, id)
		redis.call('PEXPIREAT', z, ARGV[3 * i + 2])
	end
end
return { 0 }`;

// KEYS as for reserve; ARGV: id, then per counter the amount used. A counter Redis lost is left to its rebuild.
const SETTLE_SCRIPT = `
local id = ARGV[1]
for i = 1, #KEYS / 2 do
	local h, z = KEYS[2 * i - 1], KEYS[2 * i]
	local held = redis.call('HGET', h, 'r:' .. id)
	if held then
		redis.call('HINCRBY', h, 'reserved', -tonumber(held))
		redis.call('HDEL', h, 'r:' .. id)
		redis.call('ZREM', z, id)
	end
	local used = tonumber(ARGV[i + 1])
	if used ~= 0 and redis.call('EXISTS', h) == 1 then redis.call('HINCRBY', h, 'used', used) end
end
return 0`;

// KEYS: hashes; ARGV: per hash used, expiresAt. Only where nothing is there: a replica that got there first wins.
const INIT_SCRIPT = `
for i, h in ipairs(KEYS) do
	if redis.call('HSETNX', h, 'used', ARGV[2 * i - 1]) == 1 then
		redis.call('HSET', h, 'reserved', 0)
		redis.call('PEXPIREAT', h, ARGV[2 * i])
	end
end
return 0`;

const PEEK_SCRIPT = `${NOW}${PURGE}
local out = {}
for i = 1, #KEYS / 2 do
	local h, z = KEYS[2 * i - 1], KEYS[2 * i]
	if redis.call('EXISTS', h) == 0 then
		out[#out + 1] = -1
		out[#out + 1] = 0
	else
		purge(h, z, now)
		out[#out + 1] = tonumber(redis.call('HGET', h, 'used') or '0')
		out[#out + 1] = tonumber(redis.call('HGET', h, 'reserved') or '0')
	end
end
return out`;

type LimitRedis = Redis & {
	usageReserve(...args: (string | number)[]): Promise<number[]>;
	usageSettle(...args: (string | number)[]): Promise<number>;
	usageInit(...args: (string | number)[]): Promise<number>;
	usagePeek(...args: (string | number)[]): Promise<number[]>;
};

export class RedisUsageLimitStore implements UsageLimitStore {
	private redis: LimitRedis;
	constructor(
		url: string,
		private prefix: string
	) {
		// Auto-pipelining: the commands of one event-loop turn (settlements of requests that ended together, and
		// reservations of requests that began together) leave in one write and one read.
		this.redis = new Redis(url, {
			maxRetriesPerRequest: 2,
			enableOfflineQueue: true,
			enableAutoPipelining: true
		}) as LimitRedis;
		this.redis.on("error", () => undefined);
		// EVALSHA: each script's text is sent once, not with every request.
		const scripts = { usageReserve: RESERVE_SCRIPT, usageSettle: SETTLE_SCRIPT, usagePeek: PEEK_SCRIPT };
		for (const [name, lua] of Object.entries(scripts)) this.redis.defineCommand(name, { lua });
		this.redis.defineCommand("usageInit", { lua: INIT_SCRIPT });
	}

	private keys(c: { limitId: string; periodStart: number }) {
		const h = `${this.prefix}:${c.limitId}:${c.periodStart}`;
		return [h, `${h}:r`];
	}

	async reserve(id: string, counters: Counter[], ttlMs: number): Promise<ReserveAnswer> {
		const keys = counters.flatMap(c => this.keys(c));
		const args = counters.flatMap(c => [c.amount, c.max, c.expiresAt]);
		const [code, ...rest] = await this.redis.usageReserve(keys.length, ...keys, id, ttlMs, ...args);
		if (code === 0) return { allowed: true };
		if (code === -1) return { allowed: false, missing: rest.map(i => i - 1) };
		return { allowed: false, refused: code - 1, state: { used: rest[0], reserved: rest[1] } };
	}

	async settle(id: string, counters: { limitId: string; periodStart: number; used: number }[]) {
		if (!counters.length) return;
		const keys = counters.flatMap(c => this.keys(c));
		await this.redis.usageSettle(keys.length, ...keys, id, ...counters.map(c => c.used));
	}

	async init(counters: { limitId: string; periodStart: number; expiresAt: number; used: number }[]) {
		if (!counters.length) return;
		const keys = counters.map(c => this.keys(c)[0]);
		await this.redis.usageInit(keys.length, ...keys, ...counters.flatMap(c => [c.used, c.expiresAt]));
	}

	async peek(counters: { limitId: string; periodStart: number }[]) {
		if (!counters.length) return [];
		const keys = counters.flatMap(c => this.keys(c));
		const out = await this.redis.usagePeek(keys.length, ...keys);
		return counters.map((_, i) => (out[2 * i] < 0 ? null : { used: out[2 * i], reserved: out[2 * i + 1] }));
	}

	async close() {
		this.redis.disconnect();
	}
}

interface MemoryCounter {
	used: number;
	held: Map<string, { amount: number; until: number }>;
	expiresAt: number;
}

// Embedded: one process runs every service, so one map per prefix is shared by the ai and usage services.
export class MemoryUsageLimitStore implements UsageLimitStore {
	private static shared = new Map<string, Map<string, MemoryCounter>>();
	private counters: Map<string, MemoryCounter>;
	constructor(prefix: string) {
		const existing = MemoryUsageLimitStore.shared.get(prefix);
		this.counters = existing ?? new Map();
		if (!existing) MemoryUsageLimitStore.shared.set(prefix, this.counters);
	}

	private get(c: { limitId: string; periodStart: number }, now: number) {
		const key = `${c.limitId}:${c.periodStart}`;
		const counter = this.counters.get(key);
		if (!counter || counter.expiresAt <= now) return undefined;
		for (const [id, h] of counter.held) if (h.until <= now) counter.held.delete(id);
		return counter;
	}
	private reserved = (c: MemoryCounter) => [...c.held.values()].reduce((n, h) => n + h.amount, 0);

	async reserve(id: string, counters: Counter[], ttlMs: number): Promise<ReserveAnswer> {
		const now = Date.now();
		const found = counters.map(c => this.get(c, now));
		const missing = found.flatMap((c, i) => (c ? [] : [i]));
		if (missing.length) return { allowed: false, missing };
		for (const [i, c] of counters.entries()) {
			const state = { used: found[i]!.used, reserved: this.reserved(found[i]!) };
			const taken = state.used + state.reserved;
			if (taken + c.amount > c.max || taken >= c.max) return { allowed: false, refused: i, state };
		}
		for (const [i, c] of counters.entries())
			if (c.amount > 0) found[i]!.held.set(id, { amount: c.amount, until: now + ttlMs });
		return { allowed: true };
	}

	async settle(id: string, counters: { limitId: string; periodStart: number; used: number }[]) {
		const now = Date.now();
		for (const c of counters) {
			const counter = this.get(c, now);
			if (!counter) continue;
			counter.held.delete(id);
			counter.used += c.used;
		}
	}

	async init(counters: { limitId: string; periodStart: number; expiresAt: number; used: number }[]) {
		const now = Date.now();
		for (const c of counters)
			if (!this.get(c, now))
				this.counters.set(`${c.limitId}:${c.periodStart}`, {
					used: c.used,
					held: new Map(),
					expiresAt: c.expiresAt
				});
	}

	async peek(counters: { limitId: string; periodStart: number }[]) {
		const now = Date.now();
		return counters.map(c => {
			const counter = this.get(c, now);
			return counter ? { used: counter.used, reserved: this.reserved(counter) } : null;
		});
	}

	async close() {}
}

export function createUsageLimitStore(redisUrl: string | undefined, prefix: string): UsageLimitStore {
	return redisUrl ? new RedisUsageLimitStore(redisUrl, prefix) : new MemoryUsageLimitStore(prefix);
}

// Where a limit's counters live, for both the AI replicas (which reserve) and the usage module (which shows them).
export const usageLimitPrefix = (namespace: string) => `${namespace}:usage-limits`;
