// RateLimitMixin: per-minute limits on requests and tokens, counted where every replica sees them (Redis in a
// cluster, process memory embedded: lib/rate-limit.ts). A module names the limits that apply to a call (its own
// scopes: organization, user, API key, model…) and `await this.admitLimits(limits, estimate, onRefused)`:
// tokens are reserved first against every token budget at once, then every request limit is counted at once (one
// round trip; a call refused by one limit is counted by none); a refusal gives the reservation back and throws
// RateLimited, a 429 naming the limit. `settleLimits` replaces a reservation by what the call really used, once.
import { Errors } from "moleculer";
import type { Service } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { getConfig } from "../lib/config";
import { createRateLimiter, RateLimiter, Reservation } from "../lib/rate-limit";

export type LimitKind = "requests_per_minute" | "tokens_per_minute";

export interface Limit {
	// Shown to clients, in the error's parentheses (e.g. "user:gpt-4o").
	scope: string;
	// The counter: one per limit and subject (e.g. `${limitId}:${userId}`).
	key: string;
	requestsPerMinute?: number | null;
	tokensPerMinute?: number | null;
}

// Names the limit that refused: its scope (in parentheses, as clients parse it) and which budget ran out.
export class RateLimited extends Errors.MoleculerClientError {
	constructor(scope: string, limit: LimitKind, perMinute: number, retryAfterSec: number) {
		const what = `${perMinute} ${limit === "tokens_per_minute" ? "tokens" : "requests"} per minute`;
		super(`rate limit exceeded (${scope}): ${what}; retry in ${retryAfterSec}s`, 429, "RATE_LIMITED", {
			retryAfter: retryAfterSec,
			scope,
			limit,
			perMinute
		});
	}
}

const WINDOW_MS = 60_000;

export interface RateLimitMethods {
	admitLimits(
		limits: Limit[],
		tokens: number,
		onRefused?: (limit: Limit, kind: LimitKind) => Promise<void>
	): Promise<Reservation | undefined>;
	settleLimits(reservation: Reservation | undefined, used: number): Promise<void>;
	peekLimits(limits: Limit[]): Promise<LimitUsage[]>;
}

// A limit's use in the current window (null: the limit sets no such budget).
export interface LimitUsage {
	requests: number | null;
	tokens: number | null;
}

type This = Service & RateLimitMethods & { rateLimiter: RateLimiter };

// Checks `limits` for one call of `tokens` (estimated); resolves with the token reservation to settle later.
async function admitLimits(
	this: This,
	limits: Limit[],
	tokens: number,
	onRefused?: (limit: Limit, kind: LimitKind) => Promise<void>
): Promise<Reservation | undefined> {
	const refuse = async (l: Limit, kind: LimitKind, perMinute: number, retryAfterSec: number): Promise<never> => {
		await onRefused?.(l, kind);
		throw new RateLimited(l.scope, kind, perMinute, retryAfterSec);
	};
	let reservation: Reservation | undefined;
	const tokenLimits = limits.filter(l => l.tokensPerMinute);
	if (tokenLimits.length) {
		const budgets = tokenLimits.map(l => ({ key: `tpm:${l.key}`, limit: l.tokensPerMinute! }));
		const r = await this.rateLimiter.reserve(budgets, tokens, WINDOW_MS);
		if (!r.allowed) {
			const l = tokenLimits[r.refused];
			await refuse(l, "tokens_per_minute", l.tokensPerMinute!, r.retryAfterSec);
		} else reservation = r.reservation;
	}
	// Every request limit in one step: a call refused by one is counted by none.
	const requestLimits = limits.filter(l => l.requestsPerMinute);
	if (requestLimits.length) {
		const budgets = requestLimits.map(l => ({ key: `rpm:${l.key}`, limit: l.requestsPerMinute! }));
		const r = await this.rateLimiter.hitAll(budgets, WINDOW_MS);
		if (!r.allowed) {
			await this.settleLimits(reservation, 0);
			const l = requestLimits[r.refused];
			await refuse(l, "requests_per_minute", l.requestsPerMinute!, r.retryAfterSec);
		}
	}
	return reservation;
}

async function settleLimits(this: This, reservation: Reservation | undefined, used: number): Promise<void> {
	if (!reservation) return;
	await this.rateLimiter
		.settle(reservation, used)
		.catch((err: Error) => this.logger.warn(`Could not settle a token reservation: ${err.message}`));
}

// How much of each limit is used now, read from the same counters admitLimits counts on; counts nothing.
async function peekLimits(this: This, limits: Limit[]): Promise<LimitUsage[]> {
	const rpm = limits.filter(l => l.requestsPerMinute);
	const tpm = limits.filter(l => l.tokensPerMinute);
	const used = await this.rateLimiter.peek(
		rpm.map(l => `rpm:${l.key}`),
		tpm.map(l => `tpm:${l.key}`),
		WINDOW_MS
	);
	return limits.map(l => ({
		requests: l.requestsPerMinute ? used.requests[rpm.indexOf(l)] : null,
		tokens: l.tokensPerMinute ? used.tokens[tpm.indexOf(l)] : null
	}));
}

// `prefix` separates this module's counters from other modules' (a Redis key prefix under the namespace).
export function RateLimitMixin(prefix: string): Partial<ServiceSchema> {
	return {
		methods: { admitLimits, settleLimits, peekLimits },
		created(this: Service) {
			const config = getConfig();
			(this as This).rateLimiter = createRateLimiter(config.redisUrl, `${config.namespace}:${prefix}`);
		},
		async stopped(this: Service) {
			await (this as This).rateLimiter.close();
		}
	};
}
