// The SQL of metering: recording usage events (priced in the statement that inserts them) and keeping the hourly,
// daily and monthly aggregates, incrementally for a batch or rebuilt for a period (re-pricing).
import type { Queryable } from "../../lib/db";
import { isUuid } from "../../lib/db/tenant";
import type { AIUsage } from "../ai/ai.events";
import type { McpEvent } from "../mcp/mcp.events";

export const GRANULARITIES = ["hour", "day", "month"] as const;
export type Granularity = (typeof GRANULARITIES)[number];
export const tableOf = (g: Granularity) =>
	({ hour: "usage_aggregates_hourly", day: "usage_aggregates_daily", month: "usage_aggregates_monthly" })[g];
// What each team's members used (migrations/usage/0003): an event is in the row of every team in its team_ids.
export const teamTableOf = (g: Granularity) =>
	({
		hour: "usage_team_aggregates_hourly",
		day: "usage_team_aggregates_daily",
		month: "usage_team_aggregates_monthly"
	})[g];

// The dimensions, in the order of the unique index and of every upsert (the same lock order on every replica).
export const DIMENSIONS = ["user_id", "api_key_id", "model", "provider_id", "kind"] as const;
const TEAM_DIMENSIONS = ["team_id", "model", "kind"] as const;
export const MEASURES = [
	"input_tokens",
	"output_tokens",
	"cached_tokens",
	"cache_write_tokens",
	"requests",
	"tool_calls",
	"embeddings",
	"cost"
] as const;
export type Measure = (typeof MEASURES)[number];

// What the organization is charged for an event `e` at a usage_pricing row `p` (dollars; prices per million tokens):
// uncached input, cached input, cache writes (at the input price unless set) and output. A cache hit of the ai
// module's own response cache reached no model: it costs nothing. Without a price row, the deployment's price stands.
export const COST_SQL = `CASE WHEN e.cache_hit THEN 0 WHEN p.id IS NULL THEN e.reported_cost ELSE round((
	greatest(0, e.input_tokens - e.cached_tokens - e.cache_write_tokens) * p.input_price
	+ e.cached_tokens * p.cached_input_price
	+ e.cache_write_tokens * coalesce(p.cache_write_price, p.input_price)
	+ e.output_tokens * p.output_price) / 1000000, 12) END`;

// The price row in force for event `e` when it happened: the organization's latest for the model not after it.
export const PRICE_JOIN = `LEFT JOIN LATERAL (
	SELECT * FROM usage_pricing pr
	WHERE pr.organization_id = e.organization_id AND pr.model = e.model AND pr.effective_from <= e.occurred_at
	ORDER BY pr.effective_from DESC LIMIT 1) p ON true`;

// The same within recordUsage's statement: the price rows of the batch's (organization, model) pairs are read once
// for the batch, not looked up in usage_pricing again for each of its events.
const BATCH_PRICES_CTE = `prices AS MATERIALIZED (
	SELECT * FROM usage_pricing pr
	WHERE (pr.organization_id, pr.model) IN (SELECT DISTINCT b.organization_id, b.model FROM batch b))`;
const BATCH_PRICE_JOIN = `LEFT JOIN LATERAL (
	SELECT * FROM prices pr
	WHERE pr.organization_id = e.organization_id AND pr.model = e.model AND pr.effective_from <= e.occurred_at
	ORDER BY pr.effective_from DESC LIMIT 1) p ON true`;

const uuidOrNull = (v: unknown) => (isUuid(v) ? v.toLowerCase() : null);
const count = (v: unknown) => (Number.isFinite(v) && (v as number) > 0 ? Math.floor(v as number) : 0);

// A usage event (ai.usage.recorded, or an MCP tool execution) as a usage_events row (before pricing and teams); ids
// that are not UUIDs are dropped rather than failing the batch.
function rowOf(e: UsageRecord) {
	return {
		id: e.id,
		organization_id: e.organizationId,
		request_id: String(e.requestId ?? e.id),
		user_id: uuidOrNull(e.userId),
		api_key_id: uuidOrNull(e.apiKeyId),
		service: e.service ?? null,
		kind: e.kind === "embedding" || e.kind === "tool" ? e.kind : "completion",
		requested_model: String(e.requestedModel ?? e.model ?? ""),
		model: String(e.model ?? e.requestedModel ?? ""),
		provider_id: uuidOrNull(e.providerId),
		status: String(e.status ?? "success"),
		cache_hit: e.cacheHit === true,
		input_tokens: count(e.inputTokens),
		output_tokens: count(e.outputTokens),
		cached_tokens: count(e.cachedTokens),
		cache_write_tokens: count(e.cacheWriteTokens),
		tool_calls: count(e.toolCalls),
		texts_embedded: e.textsEmbedded === undefined ? null : count(e.textsEmbedded),
		reported_cost: Number.isFinite(e.cost) && e.cost > 0 ? e.cost : 0,
		occurred_at: e.occurredAt ?? e.time
	};
}

const ROW_TYPE = `id uuid, organization_id uuid, request_id text, user_id uuid, api_key_id uuid,
	service text, kind text, requested_model text, model text, provider_id uuid, status text, cache_hit boolean,
	input_tokens bigint, output_tokens bigint, cached_tokens bigint, cache_write_tokens bigint, tool_calls integer,
	texts_embedded integer, reported_cost numeric, occurred_at timestamptz`;
const EVENT_COLUMNS =
	"id, organization_id, request_id, user_id, api_key_id, service, kind, requested_model, model, " +
	"provider_id, status, cache_hit, input_tokens, output_tokens, cached_tokens, cache_write_tokens, tool_calls, " +
	"texts_embedded, reported_cost, occurred_at";

// The teams of an event's user in its organization, as the row is recorded: the rule team quotas count by
// (services/usage/consumption.ts), so "by team" shows what those quotas see. The platform knows no team of a request
// itself; an API key's requests are its owner's (the key's user). Memberships are read once per batch.
const TEAMS_CTE = `teams AS (
	SELECT tm.organization_id, tm.user_id, array_agg(tm.team_id ORDER BY tm.team_id) AS ids FROM team_members tm
	WHERE tm.user_id IN (SELECT b.user_id FROM batch b WHERE b.user_id IS NOT NULL)
	GROUP BY tm.organization_id, tm.user_id)`;

// One organization's metering lock (a transaction-level advisory lock): ingestion holds it shared for each
// organization of its batch, a re-pricing exclusively for its own (services/usage/pricing.service.ts), so a
// re-pricing waits for that organization's batches in flight and holds back only that organization's new ones.
export const orgLockKey = (org: string) => `hashtextextended('usage:' || ${org}::text, 0)`;

// Records a batch of events (each at most once: the id is the key) and adds the new ones to every aggregate.
// Events of an organization that no longer exists are dropped. Returns how many were new.
// `textsEmbedded`: set only for what the built-in embedder embedded (embedding.events), which is no model request.
export type UsageRecord = Omit<AIUsage, "kind"> & {
	kind: AIUsage["kind"] | "tool";
	id: string;
	time: string;
	textsEmbedded?: number;
};

export type ToolExecuted = Extract<McpEvent, { type: "mcp.tool.execution.completed" | "mcp.tool.execution.failed" }>;

// An MCP tool execution as one tool call of kind "tool", its "model" the server and tool it ran.
export const toolCallOf = (e: ToolExecuted): UsageRecord => ({
	id: e.id,
	time: e.time,
	requestId: e.executionId,
	organizationId: e.organizationId!,
	userId: e.userId,
	apiKeyId: e.apiKeyId,
	service: "mcp",
	kind: "tool",
	requestedModel: `mcp:${e.serverName}/${e.tool}`,
	model: `mcp:${e.serverName}/${e.tool}`,
	status:
		e.type === "mcp.tool.execution.completed"
			? e.isError
				? "error"
				: "success"
			: e.outcome === "cancelled"
				? "cancelled"
				: "error",
	cacheHit: false,
	inputTokens: 0,
	outputTokens: 0,
	cachedTokens: 0,
	cacheWriteTokens: 0,
	toolCalls: 1,
	cost: 0,
	occurredAt: e.time
});

// The MCP events metered as tool calls (a consumer's `types` on mcp.events).
export const TOOL_EXECUTED: ToolExecuted["type"][] = ["mcp.tool.execution.completed", "mcp.tool.execution.failed"];
export const isToolExecuted = (e: McpEvent): e is ToolExecuted => (TOOL_EXECUTED as string[]).includes(e.type);

export async function recordUsage(tx: Queryable, events: UsageRecord[]) {
	if (!events.length) return 0;
	const orgs = [...new Set(events.map(e => String(e.organizationId).toLowerCase()))];
	await tx.query(`SELECT pg_advisory_xact_lock_shared(${orgLockKey("o")}) FROM unnest($1::text[]) o`, [orgs]);
	const { rows } = await tx.query<{ id: string; teams: boolean }>(
		`WITH batch AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS e(${ROW_TYPE})), ${TEAMS_CTE}, ${BATCH_PRICES_CTE}
		 INSERT INTO usage_events (${EVENT_COLUMNS}, team_ids, cost, pricing_id)
		 SELECT ${EVENT_COLUMNS.split(", ")
				.map(c => `e.${c}`)
				.join(", ")}, coalesce(t.ids, '{}'), ${COST_SQL}, p.id
		 FROM batch e
		 JOIN organizations o ON o.id = e.organization_id
		 LEFT JOIN teams t ON t.organization_id = e.organization_id AND t.user_id = e.user_id
		 ${BATCH_PRICE_JOIN}
		 ORDER BY e.id
		 ON CONFLICT (id) DO NOTHING
		 RETURNING id, cardinality(team_ids) > 0 AS teams`,
		[JSON.stringify(events.map(rowOf))]
	);
	if (!rows.length) return 0;
	const ids = rows.map(r => r.id);
	for (const g of GRANULARITIES) await addToAggregates(tx, g, "id = ANY($1::uuid[])", [ids]);
	// Most events of an organization without teams have none: no statement for them.
	const teamed = rows.filter(r => r.teams).map(r => r.id);
	if (teamed.length)
		for (const g of GRANULARITIES) await addToTeamAggregates(tx, g, "id = ANY($1::uuid[])", [teamed]);
	return rows.length;
}

const KEY = `organization_id, bucket, ${DIMENSIONS.join(", ")}`;
const TEAM_KEY = `organization_id, bucket, ${TEAM_DIMENSIONS.join(", ")}`;
// An MCP tool execution (kind 'tool') is a tool call, not a model request; nor is what the built-in embedder
// embedded (texts_embedded set), which counts its texts as embeddings where a model request of kind 'embedding'
// counts one.
const SUMS = `sum(input_tokens), sum(output_tokens), sum(cached_tokens), sum(cache_write_tokens),
	count(*) FILTER (WHERE kind <> 'tool' AND texts_embedded IS NULL),
	sum(tool_calls), coalesce(sum(coalesce(texts_embedded, 1)) FILTER (WHERE kind = 'embedding'), 0), sum(cost)`;

// Adds the usage_events rows matching `where` to granularity g's buckets: grouped in the statement, upserted in the
// index's order so that two replicas updating the same rows take their locks in the same order (no deadlock).
export async function addToAggregates(tx: Pick<Queryable, "query">, g: Granularity, where: string, params: unknown[]) {
	await tx.query(
		`INSERT INTO ${tableOf(g)} AS a (${KEY}, ${MEASURES.join(", ")})
		 SELECT organization_id, date_trunc('${g}', occurred_at, 'UTC') AS bucket, ${DIMENSIONS.join(", ")}, ${SUMS}
		 FROM usage_events WHERE ${where}
		 GROUP BY ${KEY}
		 ORDER BY ${KEY}
		 ON CONFLICT (${KEY}) DO UPDATE SET ${MEASURES.map(m => `${m} = a.${m} + EXCLUDED.${m}`).join(", ")}`,
		params
	);
}

// The same for the teams' buckets: each event once per team of its team_ids, in the key's order.
export async function addToTeamAggregates(
	tx: Pick<Queryable, "query">,
	g: Granularity,
	where: string,
	params: unknown[]
) {
	await tx.query(
		`INSERT INTO ${teamTableOf(g)} AS a (${TEAM_KEY}, ${MEASURES.join(", ")})
		 SELECT organization_id, date_trunc('${g}', occurred_at, 'UTC') AS bucket, team_id, model, kind, ${SUMS}
		 FROM usage_events, unnest(team_ids) AS team_id WHERE ${where}
		 GROUP BY ${TEAM_KEY}
		 ORDER BY ${TEAM_KEY}
		 ON CONFLICT (${TEAM_KEY}) DO UPDATE SET ${MEASURES.map(m => `${m} = a.${m} + EXCLUDED.${m}`).join(", ")}`,
		params
	);
}

const STEP: Record<Granularity, string> = { hour: "1 hour", day: "1 day", month: "1 month" };

// Rebuilds granularity g's buckets of the organization that overlap [from, to) (of one model, if given) from
// usage_events, whole buckets at a time: a bucket partly in the range is summed again from all its events. The
// teams' buckets too, from the teams each event was recorded with. `t` binds $org (TenantSql). Returns how many
// (non-team) bucket rows were rebuilt.
export async function rebuildAggregates(
	t: Pick<Queryable, "query">,
	g: Granularity,
	from: Date,
	to: Date,
	model: string | null
) {
	const inRange = (col: string) =>
		`${col} >= date_trunc('${g}', $1::timestamptz, 'UTC') AND ` +
		`${col} < date_trunc('${g}', $2::timestamptz - interval '1 microsecond', 'UTC') + interval '${STEP[g]}'`;
	const modelFilter = "($3::text IS NULL OR model = $3)";
	const events = `organization_id = $org AND ${inRange("occurred_at")} AND ${modelFilter}`;
	for (const table of [tableOf(g), teamTableOf(g)])
		await t.query(`DELETE FROM ${table} WHERE organization_id = $org AND ${inRange("bucket")} AND ${modelFilter}`, [
			from,
			to,
			model
		]);
	await addToAggregates(t, g, events, [from, to, model]);
	await addToTeamAggregates(t, g, events, [from, to, model]);
	const { rows } = await t.query<{ n: number }>(
		`SELECT count(*)::int AS n FROM ${tableOf(g)} WHERE organization_id = $org AND ${inRange("bucket")} AND ${modelFilter}`,
		[from, to, model]
	);
	return rows[0].n;
}
