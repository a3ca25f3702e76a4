// lib/local-cache.ts: the load-through read. No infrastructure.
import { LocalCache } from "../../lib/local-cache";

describe("LocalCache.getOrLoad", () => {
	test("loads a missing key once, keeps it, and loads again after it is dropped", async () => {
		const cache = new LocalCache<{ n: number }>({ max: 10, ttlMs: 60_000 });
		let loads = 0;
		const load = async () => ({ n: ++loads });
		expect(await cache.getOrLoad("org", load)).toEqual({ n: 1 });
		expect(await cache.getOrLoad("org", load)).toEqual({ n: 1 });
		cache.delete("org");
		expect(await cache.getOrLoad("org", load)).toEqual({ n: 2 });
	});

	test("keeps nothing when the load fails", async () => {
		const cache = new LocalCache<string>({ max: 10, ttlMs: 60_000 });
		await expect(cache.getOrLoad("org", () => Promise.reject(new Error("db down")))).rejects.toThrow("db down");
		expect(cache.has("org")).toBe(false);
	});
});
