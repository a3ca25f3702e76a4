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
	organization_id: string;
	name: string;
	metric: Metric;
	scope: LimitDef["scope"];
	subject_id: string | null;
	period: LimitDef["period"];
	amount: number;
	thresholds: number[];
	created_us: string; // created_at in microseconds since the epoch: compared with an event's time at its precision
}

// Every enabled limit of the batch's organizations, in one order (kind, id) so that replicas take the consumption
// rows in one order. Which of them apply to each event is decided here (appliesTo), not by a query per event.
const LIMITS_SQL = `
	SELECT 'quota' AS kind, id, organization_id, name, metric, scope, subject_id, period, amount, thresholds,
	       (extract(epoch FROM created_at) * 1000000)::bigint AS created_us
	  FROM usage_quotas WHERE organization_id = ANY($1::uuid[]) AND enabled
	UNION ALL
	SELECT 'budget', id, organization_id, name, 'cost', scope, subject_id, period, amount, thresholds,
	       (extract(epoch FROM created_at) * 1000000)::bigint
	  FROM usage_budgets WHERE organization_id = ANY($1::uuid[]) AND enabled
	 ORDER BY 1, 2`;

export type Consumed = Pick<
	AIUsage,
	"organizationId" | "userId" | "apiKeyId" | "occurredAt" | "inputTokens" | "outputTokens" | "toolCalls" | "cost"
>;

// The limits that apply to each event of a batch: read with one query for the batch (and one for team
// memberships, only when a team's limit is among them). A subject_id matches when the caller is that user, that
// API key, or a member of that team; a limit counts what happened after it was created (an event still in flight
// from before is not its).
export async function limitsOfBatch(tx: Queryable, batch: Consumed[]): Promise<(e: Consumed) => LimitRow[]> {
	if (!batch.length) return () => [];
	const orgs = [...new Set(batch.map(e => e.organizationId))];
	const limits = (await tx.query<LimitRow>(LIMITS_SQL, [orgs])).rows;
	if (!limits.length) return () => [];
	const teams = new Set<string>(); // "org user team"
	const users = [...new Set(batch.flatMap(e => (e.userId ? [e.userId] : [])))];
	if (users.length && limits.some(l => l.scope === "team")) {
		const { rows } = await tx.query<{ organization_id: string; user_id: string; team_id: string }>(
			`SELECT organization_id, user_id, team_id FROM team_members
			  WHERE organization_id = ANY($1::uuid[]) AND user_id = ANY($2::uuid[])`,
			[orgs, users]
		);
		for (const r of rows) teams.add(`${r.organization_id} ${r.user_id} ${r.team_id}`);
	}
	const applies = (l: LimitRow, e: Consumed, occurredUs: number) =>
		l.organization_id === e.organizationId &&
		Number(l.created_us) <= occurredUs &&
		(l.scope === "organization" ||
			(l.scope === "user" && l.subject_id === e.userId) ||
			(l.scope === "api_key" && l.subject_id === e.apiKeyId) ||
			(l.scope === "team" && !!e.userId && teams.has(`${e.organizationId} ${e.userId} ${l.subject_id}`)));
	return e => {
		const occurredUs = new Date(e.occurredAt).getTime() * 1000;
		return limits.filter(l => applies(l, e, occurredUs));
	};
}

// Counts one event against the limits that apply to it (from limitsOfBatch); returns the crossings and what it
// added to each limit's period.
export async function consume(
	tx: Queryable,
	e: Consumed,
	limits: LimitRow[]
): Promise<{ events: UsageEvent[]; counted: { limit: LimitDef; periodStart: Date; amount: number }[] }> {
	const amounts = amountsOf(e);
	const at = new Date(e.occurredAt);
	const events: UsageEvent[] = [];
	const counted: { limit: LimitDef; periodStart: Date; amount: number }[] = [];
	for (const l of limits) {
		const amount = amounts[l.metric];
		if (!(amount > 0)) continue;
		const start = periodStart(l.period, at);
		counted.push({
			limit: {
				kind: l.kind,
				id: l.id,
				name: l.name,
				metric: l.metric,
				scope: l.scope,
				subjectId: l.subject_id,
				period: l.period,
				amount: Number(l.amount),
				thresholds: l.thresholds
			},
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
