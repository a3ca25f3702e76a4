// RateLimitMixin: request and token limits a module names per call; a refusal is a 429 naming the limit, runs the
// module's hook, and gives back what was reserved. Counted in process memory here (no REDIS_URL).
import { ServiceBroker } from "moleculer";
import type { Service } from "moleculer";
import { loadConfig, setConfig } from "../../lib/config";
import { Limit, RateLimited, RateLimitMethods, RateLimitMixin } from "../../mixins/rate-limit.mixin";
import { MemoryRateLimiter } from "../../lib/rate-limit";

type Limited = Service & RateLimitMethods & { rateLimiter: MemoryRateLimiter };

describe("rate-limit mixin", () => {
	let broker: ServiceBroker;
	let svc: Limited;
	beforeAll(async () => {
		setConfig({ ...loadConfig(), redisUrl: undefined });
		broker = new ServiceBroker({ logger: false });
		svc = broker.createService({ name: "limited", mixins: [RateLimitMixin("limited")] }) as Limited;
		await broker.start();
	});
	afterAll(() => broker.stop());

	test("refuses the request past a per-minute limit with a 429 naming its scope, after the hook", async () => {
		const limits: Limit[] = [{ scope: "user", key: "rpm-test:u1", requestsPerMinute: 2 }];
		const refused: string[] = [];
		const hook = async (l: Limit, kind: string) => void refused.push(`${l.scope} ${kind}`);
		await svc.admitLimits(limits, 0, hook);
		await svc.admitLimits(limits, 0, hook);
		const third = svc.admitLimits(limits, 0, hook);
		await expect(third).rejects.toBeInstanceOf(RateLimited);
		await expect(svc.admitLimits(limits, 0, hook)).rejects.toMatchObject({
			code: 429,
			type: "RATE_LIMITED",
			message: expect.stringMatching(/^rate limit exceeded \(user\): 2 requests per minute; retry in \d+s$/),
			data: { scope: "user", limit: "requests_per_minute", perMinute: 2 }
		});
		expect(refused).toEqual(["user requests_per_minute", "user requests_per_minute"]);
	});

	test("reserves tokens against every budget, settles to what was used, and gives back on a request refusal", async () => {
		const tokens: Limit = { scope: "organization", key: "tpm-test:o1", tokensPerMinute: 100 };
		const requests: Limit = { scope: "api_key", key: "tpm-test:k1", requestsPerMinute: 1 };
		const first = await svc.admitLimits([tokens, requests], 60);
		expect(first).toBeDefined();
		await svc.settleLimits(first, 30); // 30 of 100 used
		// Refused by the request limit: its 60 reserved tokens are given back, so 70 more still fit afterwards.
		await expect(svc.admitLimits([tokens, requests], 60)).rejects.toMatchObject({ data: { scope: "api_key" } });
		const fits = await svc.admitLimits([tokens], 70);
		expect(fits).toBeDefined();
		await expect(svc.admitLimits([tokens], 1)).rejects.toMatchObject({
			data: { scope: "organization", limit: "tokens_per_minute", perMinute: 100 }
		});
	});
});
