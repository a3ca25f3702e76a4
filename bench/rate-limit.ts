// Rate-limit hits per second against the local Redis (the gateway charges every request to its IP and its user, one
// round trip each): the platform's limiter and rate-limiter-flexible's RateLimiterRedis (fixed window) side by side.
// `node --import tsx bench/rate-limit.ts`; BENCH_RL_CONCURRENCY (50), BENCH_RL_DURATION_MS (3000), REDIS_URL.
import crypto from "crypto";
import path from "path";
import Redis from "ioredis";
import { RateLimiterRedis } from "rate-limiter-flexible";
import { RedisRateLimiter } from "../lib/rate-limit";
// A before/after: `node --import tsx bench/rate-limit.ts <path of another rate-limit module>`.
const other = process.argv[2];

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const concurrency = Number(process.env.BENCH_RL_CONCURRENCY ?? 50);
const duration = Number(process.env.BENCH_RL_DURATION_MS ?? 3000);
const prefix = `bench-rl-${crypto.randomBytes(4).toString("hex")}`;

async function rate(hit: (key: string) => Promise<unknown>): Promise<number> {
	let count = 0;
	const end = Date.now() + duration;
	const worker = async (i: number) => {
		while (Date.now() < end) {
			await hit(`user:${i % 500}`);
			count++;
		}
	};
	await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
	return count / (duration / 1000);
}

async function main() {
	const platform = new RedisRateLimiter(url, `${prefix}:p`);
	const client = new Redis(url);
	const flexible = new RateLimiterRedis({ storeClient: client, keyPrefix: `${prefix}:f`, points: 1e9, duration: 60 });
	const variants: [string, (key: string) => Promise<unknown>][] = [
		["platform hit", key => platform.hit(key, 1e9, 60_000)],
		["rate-limiter-flexible consume", key => flexible.consume(key)]
	];
	const others: { close(): Promise<void> }[] = [];
	if (other) {
		const { RedisRateLimiter: Other } = await import(path.resolve(other));
		const limiter = new Other(url, `${prefix}:o`);
		others.push(limiter);
		variants.push(["other hit", key => limiter.hit(key, 1e9, 60_000)]);
	}
	for (let round = 0; round < 3; round++)
		for (const [label, hit] of variants) console.log(`${label.padEnd(30)} ${Math.round(await rate(hit))} hits/s`);
	for (const r of [client, new Redis(url)]) {
		const keys = await r.keys(`${prefix}:*`);
		if (keys.length) await r.del(...keys);
		r.disconnect();
	}
	await Promise.all([platform.close(), ...others.map(o => o.close())]);
}
main();
