// The completion cache's in-process copy (embedded mode, no Redis) stays bounded: the oldest entries make room.
import { CompletionCache } from "../../services/ai/cache";

describe("AI completion cache, embedded copy", () => {
	test("keeps at most its bound of entries, dropping the oldest first", async () => {
		const cache = new CompletionCache(undefined, "test");
		const hot = cache as any;
		for (let i = 0; i < 5100; i++) await hot.setHot(`k${i}`, `v${i}`, 60);
		expect(hot.memory.size).toBe(5000);
		expect(hot.memoryGet("k0")).toBeUndefined();
		expect(hot.memoryGet("k99")).toBeUndefined();
		expect(hot.memoryGet("k100")).toBe("v100");
		expect(hot.memoryGet("k5099")).toBe("v5099");
		// Writing an existing key again makes it the newest.
		await hot.setHot("k100", "again", 60);
		await hot.setHot("k-new", "x", 60);
		expect(hot.memoryGet("k100")).toBe("again");
		expect(hot.memoryGet("k101")).toBeUndefined();
		cache.close();
	});
});
