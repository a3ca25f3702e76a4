// The durable side of quotas and budgets: what each limit consumed per period, counted from ai.usage.recorded and MCP
// tool executions (mcp.events, one tool call each) in the consumer's transaction (EventsMixin records the event id there, so a replayed event counts nothing), and each
// threshold crossing, recorded once per limit, period and threshold (a unique row) and announced in that transaction.
import type { Queryable } from "../../lib/db";
import { makeEvent } from "../../lib/events/outbox";
import { amountsOf, LimitDef, Metric, periodStart } from "../../lib/usage-limits";
import type { AIUsage } from "../ai/ai.events";
import type { UsageEvent } from "./usage.events";

interface LimitRow {
	kind: "quota" | "budget";
	id: string;
	name: string;
	metric: Metric;
	scope: LimitDef["scope"];
	subject_id: string | null;
	period: LimitDef["period"];
	amount: number;
	thresholds: number[];
}

// A subject_id matches when the caller is that user, that API key, or a member of that team. A limit counts what
// happened after it was created (an event still in flight from before is not its).
const APPLIES = `created_at <= $4 AND (scope = 'organization' OR (scope = 'user' AND subject_id = $2) OR (scope = 'api_key' AND subject_id = $3)
	OR (scope = 'team' AND subject_id IN (SELECT team_id FROM team_members WHERE user_id = $2 AND organization_id = $1)))`;
const LIMITS_SQL = `
	SELECT 'quota' AS kind, id, name, metric, scope, subject_id, period, amount, thresholds FROM usage_quotas
	 WHERE organization_id = $1 AND enabled AND ${APPLIES}
	UNION ALL
	SELECT 'budget', id, name, 'cost', scope, subject_id, period, amount, thresholds FROM usage_budgets
	 WHERE organization_id = $1 AND enabled AND ${APPLIES}
	 ORDER BY 1, 2`;

export type Consumed = Pick<
	AIUsage,
	"organizationId" | "userId" | "apiKeyId" | "occurredAt" | "inputTokens" | "outputTokens" | "toolCalls" | "cost"
>;

// Counts one event against every limit of its organization that applies to its caller; returns the crossings and
// what it added to each limit's period.
export async function consume(
	tx: Queryable,
	e: Consumed
): Promise<{ events: UsageEvent[]; counted: { limit: LimitDef; periodStart: Date; amount: number }[] }> {
	const limits = (
		await tx.query<LimitRow>(LIMITS_SQL, [e.organizationId, e.userId ?? null, e.apiKeyId ?? null, e.occurredAt])
	).rows;
	const amounts = amountsOf(e);
	const at = new Date(e.occurredAt);
	const events: UsageEvent[] = [];
	const counted: { limit: LimitDef; periodStart: Date; amount: number }[] = [];
	for (const l of limits) {
		const amount = amounts[l.metric];
		if (!(amount > 0)) continue;
		const start = periodStart(l.period, at);
		counted.push({
			limit: { ...l, subjectId: l.subject_id, amount: Number(l.amount) },
			periodStart: start,
			amount
		});
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
			const line = threshold * Number(l.amount);
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
	l: LimitRow,
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
		...(l.subject_id ? { subjectId: l.subject_id } : {}),
		period: l.period,
		periodStart: start.toISOString(),
		used,
		limit: Number(l.amount)
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
