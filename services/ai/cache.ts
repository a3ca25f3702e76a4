// Exact-match response cache: hot copies in Redis (process memory when embedded), the durable record in ai_cache.
// The key covers the organization, the model and the normalized request, so organizations never share an entry.
import crypto from "crypto";
import canonicalize from "canonicalize";
import Redis from "ioredis";
import type { Db } from "../../lib/db";

const CACHED_FIELDS = [
	"messages",
	"temperature",
	"max_tokens",
	"max_completion_tokens",
	"top_p",
	"stop",
	"tools",
	"tool_choice",
	"response_format",
	"seed",
	"n",
	"logprobs",
	"top_logprobs",
	"logit_bias",
	"parallel_tool_calls",
	"reasoning_effort"
];

// RFC 8785 canonical JSON: key order does not change the key (the same text the hand-written serializer gave).
export function cacheKey(organizationId: string, model: string, body: Record<string, unknown>): string {
	const picked: Record<string, unknown> = {};
	for (const f of CACHED_FIELDS) if (body[f] !== undefined) picked[f] = body[f];
	return crypto
		.createHash("sha256")
		.update(`${organizationId}\n${model}\n${canonicalize(picked)}`)
		.digest("hex");
}

const MEMORY_ENTRIES = 5000;

export class CompletionCache {
	private redis?: Redis;
	private memory = new Map<string, { value: string; expires: number }>();

	constructor(
		redisUrl: string | undefined,
		private prefix: string
	) {
		if (redisUrl) {
			this.redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
			this.redis.on("error", () => undefined);
		}
	}

	private hotKey(org: string, key: string) {
		return `${this.prefix}:${org}:${key}`;
	}

	async get(db: Db, org: string, key: string): Promise<any | undefined> {
		const hot = this.hotKey(org, key);
		const cached = this.redis ? await this.redis.get(hot).catch(() => null) : this.memoryGet(hot);
		if (cached) return JSON.parse(cached);
		const row = (
			await db.query(
				"SELECT response, expires_at FROM ai_cache WHERE organization_id = $1 AND cache_key = $2 AND expires_at > now()",
				[org, key]
			)
		).rows[0];
		if (!row) return undefined;
		const ttl = Math.max(1, Math.floor((new Date(row.expires_at).getTime() - Date.now()) / 1000));
		await this.setHot(hot, JSON.stringify(row.response), ttl);
		return row.response;
	}

	async set(db: Db, org: string, key: string, model: string, response: unknown, ttlSec: number) {
		const json = JSON.stringify(response);
		await this.setHot(this.hotKey(org, key), json, ttlSec);
		await db.query(
			`INSERT INTO ai_cache (organization_id, cache_key, model, response, expires_at) VALUES ($1, $2, $3, $4, now() + ($5 || ' seconds')::interval)
			 ON CONFLICT (organization_id, cache_key) DO UPDATE SET response = EXCLUDED.response, expires_at = EXCLUDED.expires_at, model = EXCLUDED.model`,
			[org, key, model, json, String(ttlSec)]
		);
	}

	async hit(db: Db, org: string, key: string) {
		await db
			.query("UPDATE ai_cache SET hits = hits + 1 WHERE organization_id = $1 AND cache_key = $2", [org, key])
			.catch(() => undefined);
	}

	private async setHot(key: string, value: string, ttlSec: number) {
		if (this.redis) return void (await this.redis.set(key, value, "EX", ttlSec).catch(() => undefined));
		// Embedded: a bounded copy; the oldest entries make room (ai_cache still holds them until they expire).
		this.memory.delete(key);
		this.memory.set(key, { value, expires: Date.now() + ttlSec * 1000 });
		for (const oldest of this.memory.keys()) {
			if (this.memory.size <= MEMORY_ENTRIES) break;
			this.memory.delete(oldest);
		}
	}

	// Expired answers leave the durable record too (any replica may do it; the DELETE is idempotent).
	async prune(db: Db) {
		await db.query("DELETE FROM ai_cache WHERE expires_at < now()");
	}

	private memoryGet(key: string) {
		const e = this.memory.get(key);
		if (!e) return undefined;
		if (e.expires <= Date.now()) {
			this.memory.delete(key);
			return undefined;
		}
		return e.value;
	}

	close() {
		this.redis?.disconnect();
	}
}
