// Rate limits as they stand now: for each of the organization's limits, what the caller's requests have used of it
// in the current minute, read from the live counters (Redis in a cluster) without counting anything.
import type { Context, Service } from "moleculer";
import type { AuthInfo } from "../../lib/permissions";
import { TenantSql, tenantSql } from "../../lib/db/tenant";
import type { Limit, LimitUsage } from "../../mixins/rate-limit.mixin";
import { named, listOf } from "../../lib/response";

interface LimitRow {
	id: string;
	scope: "organization" | "user" | "api_key" | "model";
	model: string | null;
	requests_per_minute: number | null;
	tokens_per_minute: number | null;
}

// Whose counter a limit counts a request on: the organization's, the user's, the API key's, or the model's.
// Undefined: the request has no such subject (a session has no API key), so the limit does not apply to it.
export function limitSubject(l: LimitRow, org: string, auth: AuthInfo, model: string): string | undefined {
	const bySubject: Record<string, string | undefined> = {
		organization: org,
		user: auth.userId,
		api_key: auth.apiKeyId
	};
	return l.scope in bySubject ? bySubject[l.scope] : `${org}:${model}`;
}

const LimitUsageRow = named("RateLimitUsage", {
	id: "uuid",
	scope: "string",
	model: "string|nullable",
	// Whose counter is shown: "organization", "you", "this API key", a model; null when it cannot be told.
	subject: "string|nullable",
	requests_per_minute: "number|integer|nullable",
	tokens_per_minute: "number|integer|nullable",
	requests_used: "number|integer|nullable",
	tokens_used: "number|integer|nullable",
	window_seconds: "number|integer"
});

interface UsageThis extends Service {
	orgConfig(t: TenantSql): Promise<{ limits: LimitRow[] }>;
	peekLimits(limits: Limit[]): Promise<LimitUsage[]>;
}

export const limitUsageActions = {
	// Per limit: used/limit for the caller's own counters (user and API key limits are counted per user and key).
	// A limit on every model without a model named counts per model: it has no single counter, so no number.
	limitUsage: {
		rest: "GET /rate-limit-usage",
		response: listOf(LimitUsageRow),
		permission: "ai:read",
		async handler(this: UsageThis, ctx: Context) {
			const t = tenantSql(ctx);
			const auth = t.auth!;
			const { limits } = await this.orgConfig(t);
			const counted = limits.map(l => {
				const subject =
					l.scope === "model" && !l.model
						? undefined
						: limitSubject(l, t.organizationId, auth, l.model ?? "");
				return { l, subject };
			});
			const peekable = counted.filter(c => c.subject);
			const used = await this.peekLimits(
				peekable.map(({ l, subject }) => ({
					scope: l.scope,
					key: `${l.id}:${subject}`,
					requestsPerMinute: l.requests_per_minute,
					tokensPerMinute: l.tokens_per_minute
				}))
			);
			const who = { organization: "organization", user: "you", api_key: "this API key", model: "model" };
			return counted.map(({ l, subject }) => {
				const u = subject ? used[peekable.findIndex(c => c.l === l)] : undefined;
				return {
					id: l.id,
					scope: l.scope,
					model: l.model,
					subject: subject ? (l.scope === "model" ? l.model : who[l.scope]) : null,
					requests_per_minute: l.requests_per_minute,
					tokens_per_minute: l.tokens_per_minute,
					requests_used: u?.requests ?? null,
					tokens_used: u?.tokens ?? null,
					window_seconds: 60
				};
			});
		}
	}
};
