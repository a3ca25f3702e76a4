// UsageLimitsMixin: the quotas and budgets of the usage module, enforced by the service that runs paid calls (the
// ai). Before a call `reserveUsage(charge)` reserves its estimate against every limit that applies to the caller,
// all or none in one round trip (lib/usage-limits.ts), or throws UsageLimitExceeded naming the limit that refused;
// after it, `settleUsage(reservation, used, at)` replaces the reservation by what was used (nothing: released), in
// the period the request ended in (`at`, its metering event's occurredAt: where the usage module counts it too).
// The organization's limits are kept in process memory (a check costs one Redis round trip, none without limits),
// dropped on every replica by the usage module's `usage.limits.changed` broadcast; the time to live bounds what a
// lost broadcast or a team's changed members leave behind.
import crypto from "crypto";
import { Errors } from "moleculer";
import type { Service } from "moleculer";
import type { ServiceSchema } from "../lib/schema";
import { getConfig, moduleSettings } from "../lib/config";
import { actionMissing } from "../lib/errors";
import { LocalCache } from "../lib/local-cache";
import {
	Amounts,
	appliesTo,
	Counter,
	createUsageLimitStore,
	fromUnits,
	LimitDef,
	Metric,
	periodEnd,
	periodStart,
	toUnits,
	UsageLimitStore,
	usageLimitPrefix
} from "../lib/usage-limits";
import usageModule from "../services/usage/usage.module";
import "../services/usage/usage.events";

const DAY_MS = 86_400_000;

// What one call is charged to: its organization and caller, and its estimate per metric (cost in dollars). The
// estimate may be given as a function: it is then computed only when a limit applies (an organization without
// limits never pays for it).
export interface UsageCharge {
	organizationId: string;
	userId?: string;
	apiKeyId?: string;
	estimate: Amounts | (() => Amounts);
	// Only the limits of these metrics (a tool call about to run is checked against tool-call quotas alone).
	metrics?: Metric[];
}

export interface UsageReservation {
	id: string; // unique per reservation (a client may send the same request id twice)
	counters: { limit: LimitDef; periodStart: number }[];
}

// The refusal names the limit: which one, its scope and period, and how much of it is used (reserved included).
export class UsageLimitExceeded extends Errors.MoleculerClientError {
	constructor(
		readonly limit: LimitDef,
		period: { start: Date; used: number; reserved: number }
	) {
		const budget = limit.kind === "budget";
		const fmt = (v: number) => (budget ? `$${Number(v.toFixed(6))}` : String(v));
		const unit = budget ? "" : ` ${limit.metric.replace("_", " ")}`;
		const whose = limit.scope === "organization" ? "organization" : `${limit.scope.replace("_", " ")}`;
		// The message says which limit, whose and how much; `details` carries the same as data for the client.
		super(
			`${budget ? "budget" : "quota"} "${limit.name}" (${whose}, per ${limit.period}) exceeded: ` +
				`${fmt(period.used + period.reserved)} of ${fmt(limit.amount)}${unit} used this ${limit.period} ` +
				`(${budget ? "budget" : "quota"} ${limit.id})`,
			budget ? 402 : 429,
			budget ? "BUDGET_EXCEEDED" : "QUOTA_EXCEEDED",
			{
				// Room comes back when the period ends (or the limit is raised).
				retryAfter: Math.max(
					1,
					Math.ceil((periodEnd(limit.period, period.start).getTime() - Date.now()) / 1000)
				),
				// Shown to the client in the error body (services/gateway/errors.ts).
				details: {
					[budget ? "budget" : "quota"]: {
						id: limit.id,
						name: limit.name,
						...(budget ? {} : { metric: limit.metric }),
						scope: limit.scope,
						subjectId: limit.subjectId,
						period: limit.period,
						periodStart: period.start.toISOString(),
						limit: limit.amount,
						used: period.used,
						reserved: period.reserved
					}
				}
			}
		);
	}
}

export interface UsageLimitsMethods {
	usageLimitsOf(organizationId: string): Promise<LimitDef[]>;
	reserveUsage(charge: UsageCharge): Promise<UsageReservation | undefined>;
	settleUsage(
		reservation: UsageReservation | undefined,
		used: Amounts | undefined,
		at?: string | Date
	): Promise<void>;
	admitToolCall(caller: { organizationId: string; userId?: string; apiKeyId?: string }): Promise<void>;
}

type This = Service &
	UsageLimitsMethods & {
		usageLimitStore: UsageLimitStore;
		usageLimitDefs: LocalCache<LimitDef[]>;
		reservationTtlMs: number;
	};

async function usageLimitsOf(this: This, organizationId: string): Promise<LimitDef[]> {
	return this.usageLimitDefs.getOrLoad(organizationId, async () => {
		try {
			return await this.broker.call<LimitDef[], { organizationId: string }>("usage-limits.definitions", {
				organizationId
			});
		} catch (err) {
			// No usage module in this cluster: there are no limits to enforce.
			if (actionMissing(err, "usage-limits.definitions")) return [];
			throw err;
		}
	});
}

async function reserveUsage(this: This, charge: UsageCharge): Promise<UsageReservation | undefined> {
	const limits = (await this.usageLimitsOf(charge.organizationId)).filter(
		l => appliesTo(l, charge) && (!charge.metrics || charge.metrics.includes(l.metric))
	);
	if (!limits.length) return undefined;
	const now = new Date();
	const estimate = typeof charge.estimate === "function" ? charge.estimate() : charge.estimate;
	const counters: (Counter & { limit: LimitDef })[] = limits.map(limit => {
		const start = periodStart(limit.period, now);
		return {
			limit,
			limitId: limit.id,
			periodStart: start.getTime(),
			expiresAt: periodEnd(limit.period, start).getTime() + DAY_MS,
			amount: toUnits(limit.metric, estimate[limit.metric]),
			max: toUnits(limit.metric, limit.amount)
		};
	});
	const id = crypto.randomUUID();
	for (let attempt = 0; ; attempt++) {
		const answer = await this.usageLimitStore.reserve(id, counters, this.reservationTtlMs);
		if (answer.allowed)
			return { id, counters: counters.map(c => ({ limit: c.limit, periodStart: c.periodStart })) };
		if ("refused" in answer) {
			const c = counters[answer.refused];
			const metric = c.limit.metric;
			throw new UsageLimitExceeded(c.limit, {
				start: new Date(c.periodStart),
				used: fromUnits(metric, answer.state.used),
				reserved: fromUnits(metric, answer.state.reserved)
			});
		}
		// Counters Redis does not have (lost, or a new period): seeded from the durable consumption, then again.
		if (attempt > 0)
			throw new Errors.MoleculerError("usage limit counters could not be rebuilt", 503, "SERVICE_UNAVAILABLE");
		const wanted = answer.missing.map(i => counters[i]);
		const used = await this.broker.call<number[], object>("usage-limits.consumption", {
			organizationId: charge.organizationId,
			counters: wanted.map(c => ({ limitId: c.limitId, periodStart: new Date(c.periodStart).toISOString() }))
		});
		await this.usageLimitStore.init(wanted.map((c, i) => ({ ...c, used: toUnits(c.limit.metric, used[i]) })));
	}
}

async function settleUsage(
	this: This,
	reservation: UsageReservation | undefined,
	used: Amounts | undefined,
	at: string | Date = new Date()
) {
	if (!reservation) return;
	const ended = new Date(at);
	const counters = reservation.counters.flatMap(c => {
		const amount = used ? toUnits(c.limit.metric, used[c.limit.metric]) : 0;
		// A request that began before a period ended and finished after it belongs to the new period, as the durable
		// consumption counts it (by occurredAt): the old period's reservation is released, the use goes to the new
		// one (if its counter is not there yet, it is rebuilt from the durable consumption, this request included).
		const end = Number.isNaN(ended.getTime()) ? c.periodStart : periodStart(c.limit.period, ended).getTime();
		return end === c.periodStart
			? [{ limitId: c.limit.id, periodStart: c.periodStart, used: amount }]
			: [
					{ limitId: c.limit.id, periodStart: c.periodStart, used: 0 },
					{ limitId: c.limit.id, periodStart: end, used: amount }
				];
	});
	// Sent on the next turn of the event loop, so a caller that does not wait (the ai, after a request) answers
	// first; settlements of the same turn go to Redis in one write (auto-pipelining). Until it lands the reservation
	// holds the estimate, so a late settlement can only refuse early, never overshoot. A settlement that fails leaves
	// the reservation to expire; the durable consumption still counts the call.
	await new Promise(resolve => setImmediate(resolve));
	await this.usageLimitStore
		.settle(reservation.id, counters)
		.catch((err: Error) => this.logger.warn(`Could not settle a usage reservation: ${err.message}`));
}

// A tool call about to run, checked against the tool-call quotas that apply to its caller (refused, naming the quota,
// when one is used up). A check, not a charge: the usage module counts the execution itself from mcp.events, so
// calls admitted at the same moment may pass a quota by the number in flight.
async function admitToolCall(
	this: This,
	caller: { organizationId: string; userId?: string; apiKeyId?: string }
): Promise<void> {
	const held = await this.reserveUsage({
		...caller,
		estimate: { tokens: 0, requests: 0, tool_calls: 1, cost: 0 },
		metrics: ["tool_calls"]
	});
	await this.settleUsage(held, undefined);
}

export const UsageLimitsMixin: Partial<ServiceSchema> = {
	events: {
		"usage.limits.changed"(this: This, ctx: { params: { organizationId: string } }) {
			this.usageLimitDefs.delete(ctx.params.organizationId);
		}
	},
	methods: { usageLimitsOf, reserveUsage, settleUsage, admitToolCall },
	created(this: Service) {
		const self = this as This;
		const config = getConfig();
		const settings = moduleSettings(usageModule);
		self.usageLimitStore = createUsageLimitStore(config.redisUrl, usageLimitPrefix(config.namespace));
		self.usageLimitDefs = new LocalCache<LimitDef[]>({ max: 10_000, ttlMs: settings.limitsCacheMs });
		self.reservationTtlMs = settings.reservationTtlMs;
	},
	async stopped(this: Service) {
		await (this as This).usageLimitStore.close();
	}
};
