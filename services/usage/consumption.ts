// The durable side of quotas and budgets: what each limit consumed per period, counted from ai.usage.recorded and MCP
// tool executions (mcp.events, one tool call each) in the consumer's transaction (EventsMixin records the event id there, so a replayed event counts nothing), and each
// threshold crossing, recorded once per limit, period and threshold (a unique row) and announced in that transaction.
import type { Queryable } from "../../lib/db";
import { makeEvent } from "../../lib/events/outbox";
import { amountsOf, appliesTo, LimitDef, Metric, periodStart } from "../../lib/usage-limits";
import type { AIUsage } from "../ai/ai.events";
import type { UsageEvent } from "./usage.events";

// A limit as the database lists it (with its team's members when it is a team's), and as the platform uses it.
export interface LimitRow {
	kind: "quota" | "budget";
	id: string;
	name: string;
	metric: Metric;
	scope: LimitDef["scope"];
	subject_id: string | null;
	period: LimitDef["period"];
	amount: number | string;
	thresholds: number[];
	members?: string[] | null;
}

export const limitDefOf = (r: LimitRow): LimitDef => ({
	id: r.id,
	kind: r.kind,
	name: r.name,
	metric: r.metric,
	scope: r.scope,
	subjectId: r.subject_id,
	period: r.period,
	amount: Number(r.amount),
	thresholds: r.thresholds,
	...(r.scope === "team" ? { members: r.members ?? [] } : {})
});

// Every enabled limit of the batch's organizations, with its team's members, in one order (kind, id) so that
// replicas take the consumption rows in one order. created_us: created_at in microseconds since the epoch, compared
// with an event's time at its precision.
const LIMITS_SQL = `
	SELECT l.*, (SELECT array_agg(m.user_id) FROM team_members m
	             WHERE l.scope = 'team' AND m.team_id = l.subject_id AND m.organization_id = l.organization_id) AS members
	  FROM (
		SELECT 'quota' AS kind, id, organization_id, name, metric, scope, subject_id, period, amount, thresholds,
		       (extract(epoch FROM created_at) * 1000000)::bigint AS created_us
		  FROM usage_quotas WHERE organization_id = ANY($1::uuid[]) AND enabled
		UNION ALL
		SELECT 'budget', id, organization_id, name, 'cost', scope, subject_id, period, amount, thresholds,
		       (extract(epoch FROM created_at) * 1000000)::bigint
		  FROM usage_budgets WHERE organization_id = ANY($1::uuid[]) AND enabled) l
	 ORDER BY 1, 2`;

export type Consumed = Pick<
	AIUsage,
	"organizationId" | "userId" | "apiKeyId" | "occurredAt" | "inputTokens" | "outputTokens" | "toolCalls" | "cost"
>;

// The limits that apply to each event of a batch, read with one query for the batch: those of its organization that
// apply to its caller (appliesTo) and existed when it happened (an event still in flight from before is not theirs).
export async function limitsOfBatch(tx: Queryable, batch: Consumed[]): Promise<(e: Consumed) => LimitDef[]> {
	if (!batch.length) return () => [];
	const orgs = [...new Set(batch.map(e => e.organizationId))];
	const rows = (await tx.query<LimitRow & { organization_id: string; created_us: string }>(LIMITS_SQL, [orgs])).rows;
	const limits = rows.map(r => ({ org: r.organization_id, createdUs: Number(r.created_us), def: limitDefOf(r) }));
	return e => {
		const occurredUs = new Date(e.occurredAt).getTime() * 1000;
		return limits
			.filter(l => l.org === e.organizationId && l.createdUs <= occurredUs && appliesTo(l.def, e))
			.map(l => l.def);
	};
}

// Counts one event against the limits that apply to it (from limitsOfBatch); returns the crossings and what it
// added to each limit's period.
export async function consume(
	tx: Queryable,
	e: Consumed,
	limits: LimitDef[]
): Promise<{ events: UsageEvent[]; counted: { limit: LimitDef; periodStart: Date; amount: number }[] }> {
	const amounts = amountsOf(e);
	const at = new Date(e.occurredAt);
	const events: UsageEvent[] = [];
	const counted: { limit: LimitDef; periodStart: Date; amount: number }[] = [];
	for (const l of limits) {
		const amount = amounts[l.metric];
		if (!(amount > 0)) continue;
		const start = periodStart(l.period, at);
		counted.push({ limit: l, periodStart: start, amount });
		const [quotaId, budgetId] = l.kind === "quota" ? [l.id, null] : [null, l.id];
		const { rows } = await tx.query<{ used: number }>(
			`INSERT INTO usage_limit_consumption (organization_id, quota_id, budget_id, period_start, used)
			 VALUES ($1, $2, $3, $4, $5)
			 ON CONFLICT (limit_id, period_start) DO UPDATE
			 SET used = usage_limit_consumption.used + EXCLUDED.used, updated_at = now()
			 RETURNING used`,
			[e.organizationId, quotaId, budgetId, start, amount]
		);
		const used = Number(rows[0].used);
		const before = used - amount;
		for (const threshold of [...new Set([...l.thresholds, 1])].sort((a, b) => a - b)) {
			const line = threshold * l.amount;
			if (!(before < line && used >= line)) continue;
			const kind = threshold >= 1 ? "exceeded" : "warning";
			const alert = await tx.query(
				`INSERT INTO usage_alerts (organization_id, quota_id, budget_id, period_start, threshold, kind, used, amount)
				 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (limit_id, period_start, threshold) DO NOTHING
				 RETURNING id`,
				[e.organizationId, quotaId, budgetId, start, threshold, kind, used, l.amount]
			);
			if (!alert.rowCount) continue;
			events.push(crossing(l, kind, threshold, start, used, e.organizationId));
		}
	}
	return { events, counted };
}

function crossing(
	l: LimitDef,
	kind: "warning" | "exceeded",
	threshold: number,
	start: Date,
	used: number,
	organizationId: string
): UsageEvent {
	const base = {
		organizationId,
		name: l.name,
		threshold,
		scope: l.scope,
		...(l.subjectId ? { subjectId: l.subjectId } : {}),
		period: l.period,
		periodStart: start.toISOString(),
		used,
		limit: l.amount
	};
	const percentage = Math.round(threshold * 100);
	if (l.kind === "quota") {
		const quota = { ...base, quotaId: l.id, metric: l.metric };
		return kind === "warning"
			? makeEvent("usage.quota.warning", { ...quota, percentage })
			: makeEvent("usage.quota.exceeded", quota);
	}
	const budget = { ...base, budgetId: l.id };
	return kind === "warning"
		? makeEvent("usage.budget.warning", { ...budget, percentage })
		: makeEvent("usage.budget.exceeded", budget);
}
