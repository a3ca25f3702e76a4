// usage-limits: quotas and budgets as they stand. Consumes ai.events and mcp.events (group "usage-limits") to keep
// each limit's durable consumption per period and announce threshold crossings (consumption.ts); tells the replicas that enforce
// limits (mixins/usage-limits.mixin.ts) which ones an organization has and what a lost counter held; shows each
// limit with its current period's use (GET /api/usage/limits).
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getConfig } from "../../lib/config";
import type { Queryable } from "../../lib/db";
import { organizationSql, tenantSql } from "../../lib/db/tenant";
import { writeManyToOutbox } from "../../lib/events/outbox";
import type { EventTypeOf } from "../../lib/events/types";
import { listOf, named } from "../../lib/response";
import {
	createUsageLimitStore,
	fromUnits,
	LimitDef,
	toUnits,
	periodEnd,
	periodStart,
	UsageLimitStore,
	usageLimitPrefix
} from "../../lib/usage-limits";
import { EventsMixin } from "../../mixins/events.mixin";
import type { AIEvent } from "../ai/ai.events";
import type { McpEvent } from "../mcp/mcp.events";
import "../mcp/mcp.events";
import { isToolExecuted, TOOL_EXECUTED, toolCallOf } from "./aggregates";
import { consume, limitDefOf, limitsOfBatch, type LimitRow } from "./consumption";
import "./usage.events";

interface Self {
	store: UsageLimitStore;
	logger: { warn(...args: unknown[]): void };
}

const LimitStatus = named("UsageLimitStatus", {
	id: "uuid",
	kind: { type: "enum", values: ["quota", "budget"] },
	name: "string",
	metric: { type: "enum", values: ["tokens", "requests", "tool_calls", "cost"] },
	scope: { type: "enum", values: ["organization", "team", "user", "api_key"] },
	subject_id: "uuid|nullable",
	// The team's, member's or API key's name, as the organization calls it.
	subject_name: "string|nullable",
	period: { type: "enum", values: ["day", "month"] },
	period_start: "date",
	period_end: "date",
	amount: "number",
	thresholds: { type: "array", items: "number" },
	enabled: "boolean",
	// Settled use this period, and what running requests hold (live counters; the durable count when Redis has none).
	used: "number",
	reserved: "number"
});

const ALL_LIMITS = `
	SELECT 'quota' AS kind, q.id, q.name, q.metric, q.scope, q.subject_id, q.period, q.amount, q.thresholds, q.enabled,
	       q.created_at
	  FROM usage_quotas q WHERE q.organization_id = $org
	UNION ALL
	SELECT 'budget', b.id, b.name, 'cost', b.scope, b.subject_id, b.period, b.amount, b.thresholds, b.enabled, b.created_at
	  FROM usage_budgets b WHERE b.organization_id = $org`;

const SUBJECT_NAMES = `
	SELECT id, name FROM teams WHERE organization_id = $org AND id = ANY($1::uuid[])
	UNION ALL SELECT u.id, coalesce(nullif(u.name, ''), u.email) FROM users u
	  JOIN organization_members m ON m.user_id = u.id AND m.organization_id = $org WHERE u.id = ANY($1::uuid[])
	UNION ALL SELECT id, name FROM api_keys WHERE organization_id = $org AND id = ANY($1::uuid[])`;

const UsageLimitsService: ServiceSchema = {
	name: "usage-limits",
	mixins: [EventsMixin],
	settings: { rest: "/usage/limits" },

	actions: {
		// Each quota and budget with its current period's use, for the limits page.
		list: {
			rest: "GET /",
			permission: "usage:read",
			response: listOf(LimitStatus),
			async handler(this: Self, ctx: Context) {
				const t = tenantSql(ctx);
				const rows = await t.rows(`${ALL_LIMITS} ORDER BY created_at`);
				const subjects = rows.map(r => r.subject_id).filter(Boolean);
				const names = new Map(
					subjects.length ? (await t.rows(SUBJECT_NAMES, [subjects])).map(r => [r.id, r.name]) : []
				);
				const now = new Date();
				const counters = rows.map(r => ({ limitId: r.id, periodStart: periodStart(r.period, now).getTime() }));
				const live = await this.store.peek(counters).catch((err: Error) => {
					this.logger.warn(`Usage limit counters unreadable, showing the durable counts: ${err.message}`);
					return counters.map(() => null);
				});
				const durable = await t.rows(
					`SELECT limit_id, used FROM usage_limit_consumption
					  WHERE organization_id = $org AND limit_id = ANY($1::uuid[]) AND period_start = ANY($2::timestamptz[])`,
					[rows.map(r => r.id), [...new Set(counters.map(c => new Date(c.periodStart).toISOString()))]]
				);
				return rows.map((r, i) => {
					const start = new Date(counters[i].periodStart);
					const settled = durable.find(d => d.limit_id === r.id)?.used ?? 0;
					const state = live[i];
					return {
						id: r.id,
						kind: r.kind,
						name: r.name,
						metric: r.metric,
						scope: r.scope,
						subject_id: r.subject_id,
						subject_name: names.get(r.subject_id) ?? null,
						period: r.period,
						period_start: start,
						period_end: periodEnd(r.period, start),
						amount: Number(r.amount),
						thresholds: r.thresholds,
						enabled: r.enabled,
						used: state ? fromUnits(r.metric, state.used) : Number(settled),
						reserved: state ? fromUnits(r.metric, state.reserved) : 0
					};
				});
			}
		},

		// Internal: the enabled limits of an organization, as the enforcing replicas keep them (team members included).
		definitions: {
			visibility: "public",
			params: { organizationId: "uuid" },
			async handler(ctx: Context<{ organizationId: string }>): Promise<LimitDef[]> {
				const t = organizationSql(ctx.params.organizationId);
				const rows = await t.rows(
					`SELECT l.*, (SELECT array_agg(user_id) FROM team_members m
					               WHERE l.scope = 'team' AND m.team_id = l.subject_id AND m.organization_id = $org) AS members
					   FROM (${ALL_LIMITS}) l WHERE l.enabled`
				);
				return rows.map(r => limitDefOf(r as LimitRow));
			}
		},

		// Internal: what limits consumed in given periods (durable), to rebuild counters Redis lost.
		consumption: {
			visibility: "public",
			params: {
				organizationId: "uuid",
				counters: {
					type: "array",
					max: 1000,
					items: { type: "object", props: { limitId: "uuid", periodStart: "string" } }
				}
			},
			async handler(
				ctx: Context<{ organizationId: string; counters: { limitId: string; periodStart: string }[] }>
			) {
				const t = organizationSql(ctx.params.organizationId);
				const rows = await t.rows(
					`SELECT limit_id, period_start, used FROM usage_limit_consumption
					  WHERE organization_id = $org AND limit_id = ANY($1::uuid[])`,
					[ctx.params.counters.map(c => c.limitId)]
				);
				return ctx.params.counters.map(c => {
					const at = new Date(c.periodStart).getTime();
					const row = rows.find(r => r.limit_id === c.limitId && new Date(r.period_start).getTime() === at);
					return row ? Number(row.used) : 0;
				});
			}
		}
	},

	channels: {
		"ai.events": {
			group: "usage-limits",
			types: ["ai.usage.recorded"] satisfies EventTypeOf<"ai.events">[],
			// One transaction per batch, not per request (a request's four round trips to the database were more than
			// its own), and one read of the batch's limits. One batch at a time per replica; replicas' batches take the
			// organizations' rows in one order.
			batch: { max: 100, ms: 10 },
			async handler(this: Self, events: AIEvent[], tx: Queryable) {
				const usage = events
					.filter((e): e is Extract<AIEvent, { type: "ai.usage.recorded" }> => e.type === "ai.usage.recorded")
					.sort((a, b) =>
						a.organizationId < b.organizationId ? -1 : a.organizationId > b.organizationId ? 1 : 0
					);
				const limitsOf = await limitsOfBatch(tx, usage);
				const crossings = [];
				for (const event of usage) {
					const limits = limitsOf(event);
					if (limits.length) crossings.push(...(await consume(tx, event, limits)).events);
				}
				// Announced in the same transaction: each crossing once, whatever the redelivery.
				await writeManyToOutbox(tx, crossings);
			}
		},
		// An MCP tool execution is one tool call. The ai settles its own calls in the live counters; nobody settles a
		// tool execution there, so this consumer adds it (to counters that exist: a missing one is rebuilt from the
		// durable consumption, this execution included), and the next reservation sees a tool-call quota used up.
		"mcp.events": {
			group: "usage-limits",
			types: TOOL_EXECUTED,
			async handler(this: Self, event: McpEvent, tx: Queryable) {
				if (!isToolExecuted(event)) return;
				const call = toolCallOf(event);
				const { events, counted } = await consume(tx, call, (await limitsOfBatch(tx, [call]))(call));
				await writeManyToOutbox(tx, events);
				if (!counted.length) return;
				await this.store
					.settle(
						`mcp:${event.id}`,
						counted.map(c => ({
							limitId: c.limit.id,
							periodStart: c.periodStart.getTime(),
							used: toUnits(c.limit.metric, c.amount)
						}))
					)
					.catch((err: Error) =>
						this.logger.warn(`tool call not added to the live counters: ${err.message}`)
					);
			}
		}
	},

	created(this: Service) {
		const config = getConfig();
		(this as unknown as Self).store = createUsageLimitStore(config.redisUrl, usageLimitPrefix(config.namespace));
	},

	async stopped(this: Service) {
		await (this as unknown as Self).store.close();
	}
};

export default UsageLimitsService;
