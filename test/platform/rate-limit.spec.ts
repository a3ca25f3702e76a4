// Request limits and token budgets are sliding windows: a full burst at the end of one window and another at the start of the next
// (twice the limit within moments, which a fixed window lets through) is held to about one limit. In process memory
// (embedded) and in Redis (shared by replicas), with the same arithmetic.
import { describeWith, REDIS_URL, uniqueNamespace } from "../helpers/infra";
import { MemoryRateLimiter, RateLimiter, RedisRateLimiter, slidingHit, tokenRetryMs } from "../../lib/rate-limit";

const LIMIT = 10;
const WINDOW_MS = 2000;

const sleepUntil = async (at: number) => {
	while (Date.now() < at) await new Promise(r => setTimeout(r, Math.min(20, Math.max(1, at - Date.now()))));
};

// Bursts of LIMIT hits just before a window edge and just after it; returns how many each burst got through and how
// long after the first burst began the second ended. A window's edge is either on the clock (windows aligned to
// multiples of WINDOW_MS) or WINDOW_MS after the hit that opened it: both are tried.
async function edgeBursts(limiter: Pick<RateLimiter, "hit">, key: string, edge: "clock" | "first hit") {
	const burst = async () => {
		const results = await Promise.all(Array.from({ length: LIMIT }, () => limiter.hit(key, LIMIT, WINDOW_MS)));
		return results.filter(r => r.allowed).length;
	};
	let boundary: number;
	let before = 0;
	if (edge === "clock") {
		while (Date.now() % WINDOW_MS < WINDOW_MS * 0.8) await new Promise(r => setTimeout(r, 20));
		boundary = (Math.floor(Date.now() / WINDOW_MS) + 1) * WINDOW_MS;
	} else {
		// One hit opens the window; the bursts straddle its end.
		const opened = Date.now();
		before += (await limiter.hit(key, LIMIT, WINDOW_MS)).allowed ? 1 : 0;
		boundary = opened + WINDOW_MS;
		await sleepUntil(boundary - 150);
	}
	const start = Date.now();
	before += await burst();
	await sleepUntil(boundary + 150);
	const after = await burst();
	return { before, after, spanMs: Date.now() - start };
}

function expectHeldToOneLimit({ before, after, spanMs }: { before: number; after: number; spanMs: number }) {
	expect(before).toBe(LIMIT);
	// What aged out of the trailing window between the bursts, at most, plus one (rounding).
	expect(after).toBeLessThanOrEqual(Math.ceil((LIMIT * spanMs) / WINDOW_MS) + 1);
	expect(before + after).toBeLessThan(2 * LIMIT);
}

describe("sliding-window request limits", () => {
	test.each(["clock", "first hit"] as const)(
		"a burst at a window edge (%s) cannot pass twice the limit (process memory)",
		async edge => {
			const limiter = new MemoryRateLimiter();
			expectHeldToOneLimit(await edgeBursts(limiter, "ip:edge", edge));
			await limiter.close();
		}
	);

	test("the arithmetic: the previous window weighs by how much of it is still in the trailing window", () => {
		// Halfway through a window after a full previous one: half of it still counts.
		const half = slidingHit({ index: 0, count: LIMIT, previous: 0 }, 1, WINDOW_MS / 2, WINDOW_MS, LIMIT);
		expect(half).toMatchObject({ allowed: true, remaining: LIMIT / 2 - 1 });
		// A full current window refuses, and names when the next hit will fit (not counted meanwhile).
		const full = slidingHit({ index: 1, count: LIMIT, previous: 0 }, 1, 500, WINDOW_MS, LIMIT);
		expect(full).toMatchObject({ allowed: false, window: { count: LIMIT } });
		expect(full.retryMs).toBeGreaterThan(WINDOW_MS - 500);
		expect(slidingHit(full.window, 2, full.retryMs - (WINDOW_MS - 500), WINDOW_MS, LIMIT).allowed).toBe(true);
		// Two windows later nothing is left.
		expect(slidingHit({ index: 0, count: LIMIT, previous: LIMIT }, 2, 0, WINDOW_MS, LIMIT).remaining).toBe(
			LIMIT - 1
		);
	});
});

describeWith(["redis"])("sliding-window request limits in Redis", () => {
	test.each(["clock", "first hit"] as const)(
		"a burst at a window edge (%s) cannot pass twice the limit, whichever replica counts",
		async edge => {
			const prefix = uniqueNamespace("rl");
			const [a, b] = [new RedisRateLimiter(REDIS_URL, prefix), new RedisRateLimiter(REDIS_URL, prefix)];
			const alternating: Pick<RateLimiter, "hit"> = {
				hit: (key, limit, windowMs) => (Math.random() < 0.5 ? a : b).hit(key, limit, windowMs)
			};
			expectHeldToOneLimit(await edgeBursts(alternating, "ip:edge", edge));
			const refused = await a.hit("ip:edge", LIMIT, WINDOW_MS);
			expect(refused).toMatchObject({ allowed: false, remaining: 0 });
			expect(refused.retryAfterSec).toBeGreaterThanOrEqual(1);
			await Promise.all([a.close(), b.close()]);
		}
	);
});

// What the rate limits page shows: `peek` reads the counters `hit` and `reserve` keep, counting nothing itself.
describe.each([
	["memory", () => new MemoryRateLimiter() as RateLimiter],
	["redis", () => new RedisRateLimiter(REDIS_URL, uniqueNamespace("peek")) as RateLimiter]
])("peek (%s)", (kind, make) => {
	const available = kind === "memory" || (process.env.INFRA_AVAILABLE ?? "").split(",").includes("redis");
	(available ? test : test.skip)(
		"reads requests and reserved tokens of the current window without counting",
		async () => {
			const limiter = make();
			const window = 60_000;
			try {
				const minute = Math.floor(Date.now() / window);
				for (let i = 0; i < 3; i++) await limiter.hit("rpm:a", 100, window);
				await limiter.reserve([{ key: "tpm:a", limit: 1000 }], 120, window);
				const first = await limiter.peek(["rpm:a", "rpm:none"], ["tpm:a", "tpm:none"], window);
				const again = await limiter.peek(["rpm:a"], ["tpm:a"], window);
				// Exact within one clock minute (a test straddling a minute's edge sees the weighted remainder).
				if (Math.floor(Date.now() / window) === minute)
					expect(first).toEqual({ requests: [3, 0], tokens: [120, 0] });
				expect(again).toEqual({ requests: [first.requests[0]], tokens: [first.tokens[0]] });
			} finally {
				await limiter.close();
			}
		}
	);
});

// Several request limits of one call (an organization's and a tool's) are counted in one step: all or none.
describe.each([
	["memory", () => new MemoryRateLimiter() as RateLimiter],
	["redis", () => new RedisRateLimiter(REDIS_URL, uniqueNamespace("hitall")) as RateLimiter]
])("hitAll (%s)", (kind, make) => {
	const available = kind === "memory" || (process.env.INFRA_AVAILABLE ?? "").split(",").includes("redis");
	(available ? test : test.skip)("counts a request in every limit, or in none when one has no room", async () => {
		const limiter = make();
		const window = 60_000;
		try {
			const minute = Math.floor(Date.now() / window);
			const both = [
				{ key: "rpm:org", limit: 5 },
				{ key: "rpm:tool", limit: 2 }
			];
			expect(await limiter.hitAll(both, window)).toEqual({ allowed: true });
			expect(await limiter.hitAll(both, window)).toEqual({ allowed: true });
			const refused = await limiter.hitAll(both, window);
			expect(refused).toMatchObject({ allowed: false, refused: 1 });
			if (!refused.allowed) expect(refused.retryAfterSec).toBeGreaterThanOrEqual(1);
			// The refused call was not counted against the organization's limit either.
			if (Math.floor(Date.now() / window) === minute)
				expect((await limiter.peek(["rpm:org", "rpm:tool"], [], window)).requests).toEqual([2, 2]);
			expect(await limiter.hitAll([{ key: "rpm:org", limit: 5 }], window)).toEqual({ allowed: true });
		} finally {
			await limiter.close();
		}
	});
});

// Token budgets slide too: a budget used up at the end of one window still counts, weighted, at the start of the
// next (a fixed window would hand out a whole new budget there). The clock is set by hand: both limiters compute
// the previous window's weight from Date.now.
describe.each([
	["memory", () => new MemoryRateLimiter() as RateLimiter],
	["redis", () => new RedisRateLimiter(REDIS_URL, uniqueNamespace("tokens")) as RateLimiter]
])("sliding token budgets (%s)", (kind, make) => {
	const available = kind === "memory" || (process.env.INFRA_AVAILABLE ?? "").split(",").includes("redis");
	(available ? test : test.skip)("a full budget at a window's end still counts at the next one's start", async () => {
		const limiter = make();
		const window = 60_000;
		const start = (Math.floor(Date.now() / window) + 1) * window;
		const clock = jest.spyOn(Date, "now");
		const budget = [{ key: "tpm:org", limit: 1000 }];
		try {
			clock.mockReturnValue(start + 59_000);
			expect((await limiter.reserve(budget, 1000, window)).allowed).toBe(true);
			// One second into the next window 59/60 of it still counts: 984 used, 100 more do not fit.
			clock.mockReturnValue(start + window + 1_000);
			expect((await limiter.peek([], ["tpm:org"], window)).tokens).toEqual([984]);
			const refused = await limiter.reserve(budget, 100, window);
			// Room for 100 once the previous window weighs 900 or less: 5 s later.
			expect(refused).toEqual({ allowed: false, refused: 0, retryAfterSec: 5 });
			clock.mockReturnValue(start + window + 6_000);
			expect((await limiter.reserve(budget, 100, window)).allowed).toBe(true);
		} finally {
			clock.mockRestore();
			await limiter.close();
		}
	});
});

test("token retry arithmetic: the previous window ages out first, else the current one in the next window", () => {
	// 900 of room needed against a full previous window (1000): wait until it weighs 900 → 6 s in, 5 s from now.
	expect(tokenRetryMs(0, 1000, 1_000, 60_000, 1000, 100)).toBe(5_000);
	// The current window alone is full: into the next window, until this one weighs little enough.
	expect(tokenRetryMs(1000, 0, 30_000, 60_000, 1000, 100)).toBe(30_000 + 6_000);
	// A request as large as the budget waits for this window to age out completely.
	expect(tokenRetryMs(500, 0, 30_000, 60_000, 1000, 1000)).toBe(30_000 + 60_000);
});
