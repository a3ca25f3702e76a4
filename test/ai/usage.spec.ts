// Tokens and cost of a completion as the logs and budgets record them. Pure logic: no infrastructure.
import { costOf, estimateTokens, usageOf } from "../../services/ai/usage";
import { Run, usageEvent } from "../../services/ai/run";

describe("usage and cost", () => {
	test("a cost is the decimal it should be, not a floating-point artefact (0.0000021, not 0.0000021000000000000002)", () => {
		const cost = costOf(
			{ prompt: 1, completion: 1, cached: 0 },
			{ input_price: 0.5, output_price: 1.6, cached_input_price: 0 }
		);
		expect(String(cost)).toBe("0.0000021");
	});

	test("the provider's reported usage is used as is, cached prompt tokens included", () => {
		const reported = { prompt_tokens: 120, completion_tokens: 30, prompt_tokens_details: { cached_tokens: 100 } };
		expect(usageOf(reported, [{ role: "user", content: "x" }], "y")).toEqual({
			prompt: 120,
			completion: 30,
			cached: 100
		});
		expect(usageOf({ prompt_tokens: 5 }, [], "")).toEqual({ prompt: 5, completion: 0, cached: 0 });
	});

	test("without a report, tokens are estimated at about four characters each (never zero for some text)", () => {
		const messages = [{ role: "user", content: "a".repeat(400) }];
		const u = usageOf(undefined, messages, "b".repeat(40));
		expect(u.prompt).toBe(Math.ceil(JSON.stringify(messages).length / 4));
		expect(u.completion).toBe(10);
		expect(u.cached).toBe(0);
		expect(estimateTokens("x")).toBe(1);
		expect(estimateTokens("")).toBe(0);
	});

	test("cost is per million tokens; cached prompt tokens are charged at the cached price, not twice", () => {
		const prices = { input_price: 2, output_price: 8, cached_input_price: 0.5 };
		expect(costOf({ prompt: 1_000_000, completion: 0, cached: 0 }, prices)).toBe(2);
		expect(costOf({ prompt: 1000, completion: 500, cached: 0 }, prices)).toBeCloseTo(
			(1000 * 2 + 500 * 8) / 1e6,
			12
		);
		// 1000 prompt tokens of which 800 cached: 200 at 2, 800 at 0.5, 500 completion at 8.
		expect(costOf({ prompt: 1000, completion: 500, cached: 800 }, prices)).toBeCloseTo(
			(200 * 2 + 800 * 0.5 + 500 * 8) / 1e6,
			12
		);
	});

	test("prices as PostgreSQL returns numerics (strings) give the same cost; free models cost nothing", () => {
		const u = { prompt: 1234, completion: 567, cached: 34 };
		const asNumbers = costOf(u, { input_price: 2.5, output_price: 10, cached_input_price: 1.25 });
		expect(costOf(u, { input_price: "2.5", output_price: "10", cached_input_price: "1.25" })).toBe(asNumbers);
		expect(costOf(u, { input_price: 0, output_price: 0, cached_input_price: 0 })).toBe(0);
	});

	test("prompt-cache writes are charged at their own price, or at the input price when a deployment sets none", () => {
		const reported = {
			prompt_tokens: 1000,
			completion_tokens: 0,
			prompt_tokens_details: { cached_tokens: 200, cache_write_tokens: 300 }
		};
		const u = usageOf(reported, [], "");
		expect(u).toEqual({ prompt: 1000, completion: 0, cached: 200, cacheWrite: 300 });
		const prices = { input_price: 3, output_price: 15, cached_input_price: 0.3 };
		// 500 plain input at 3, 200 cache reads at 0.3, 300 cache writes at 3.75.
		expect(costOf(u, { ...prices, cache_write_price: "3.75" })).toBeCloseTo(
			(500 * 3 + 200 * 0.3 + 300 * 3.75) / 1e6,
			12
		);
		expect(costOf(u, { ...prices, cache_write_price: null })).toBeCloseTo((800 * 3 + 200 * 0.3) / 1e6, 12);
	});

	test("a report claiming more cached tokens than prompt tokens never makes a negative cost", () => {
		const cost = costOf(
			{ prompt: 10, completion: 0, cached: 50 },
			{ input_price: 2, output_price: 8, cached_input_price: 1 }
		);
		expect(cost).toBeGreaterThanOrEqual(0);
	});
});

describe("the metering event of a request (ai.usage.recorded)", () => {
	const run = {
		requestId: "r1",
		org: "org-1",
		auth: { kind: "apiKey", userId: "u1", apiKeyId: "k1", permissions: [] },
		target: { requested: "fast", chain: ["fast"], body: {}, tags: [] },
		kind: "chat"
	} as unknown as Run;

	test("names who used what, with the model that answered and the tool calls it made", () => {
		const e = usageEvent(run, {
			status: "success",
			servedModel: "gpt-x",
			provider: { id: "p1" },
			usage: { prompt: 100, completion: 20, cached: 40, cacheWrite: 10 },
			cost: 0.5,
			response: { choices: [{ message: { tool_calls: [{}, {}] } }] }
		});
		expect(e).toMatchObject({
			requestId: "r1",
			organizationId: "org-1",
			userId: "u1",
			apiKeyId: "k1",
			kind: "completion",
			requestedModel: "fast",
			model: "gpt-x",
			providerId: "p1",
			status: "success",
			inputTokens: 100,
			outputTokens: 20,
			cachedTokens: 40,
			cacheWriteTokens: 10,
			toolCalls: 2,
			cost: 0.5,
			cacheHit: false
		});
	});

	test("a cancelled stream is metered for what it produced; a refused or token-less request is not metered", () => {
		const partial = usageEvent(run, {
			status: "cancelled",
			usage: { prompt: 50, completion: 7, cached: 0 },
			cost: 1
		});
		expect(partial).toMatchObject({ status: "cancelled", inputTokens: 50, outputTokens: 7, cost: 1 });
		expect(usageEvent(run, { status: "rate_limited", error: "rate limit" })).toBeUndefined();
		expect(usageEvent(run, { status: "error", error: "upstream down" })).toBeUndefined();
	});

	test("a cache hit is one metered request at no cost", () => {
		const hit = usageEvent(run, { status: "success", cacheHit: true, servedModel: "gpt-x", response: {} });
		expect(hit).toMatchObject({ cacheHit: true, cost: 0, inputTokens: 0, outputTokens: 0 });
	});
});
