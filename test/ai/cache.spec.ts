// The completion cache's in-process copy (embedded mode, no Redis) stays bounded: the oldest entries make room.
import { CompletionCache, cacheKey } from "../../services/ai/cache";

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

describe("AI cache keys", () => {
	const ORG = "00000000-0000-4000-8000-000000000001";
	const body = {
		messages: [{ role: "user", content: 'héllo "q" \n' }],
		temperature: 0.2,
		tools: [{ type: "function", function: { name: "f", parameters: { b: 1, a: [] } } }],
		stream: true
	};

	// RFC 8785 canonical JSON: the same key for any key order, and the keys of entries cached before the change.
	test("key order does not change a key, and keys made before stay the same", () => {
		const key = "8aa9921cd7dd8f11a16ba6223d63a54e0a99c7ad5938ff0ba3620a173dece40b";
		expect(cacheKey(ORG, "gpt-x", body)).toBe(key);
		const reordered = {
			stream: true,
			tools: [{ function: { parameters: { a: [], b: 1 }, name: "f" }, type: "function" }],
			temperature: 0.2,
			messages: [{ content: 'héllo "q" \n', role: "user" }]
		};
		expect(cacheKey(ORG, "gpt-x", reordered)).toBe(key);
		expect(cacheKey(ORG, "gpt-x", { ...body, temperature: 0.3 })).not.toBe(key);
	});
});
