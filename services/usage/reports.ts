// Usage reports over the aggregates: the parameters a client may send (each checked, a 422 naming it), and the SQL
// for a time series, a top-N and a summary, always within the caller's organization (TenantSql's $org).
import { invalid } from "../../lib/errors";
import type { TenantSql } from "../../lib/db/tenant";
import { GRANULARITIES, MEASURES, tableOf, teamTableOf, type Granularity, type Measure } from "./aggregates";

export const GROUPS = ["model", "user", "api_key", "team", "provider", "kind"] as const;
export type Group = (typeof GROUPS)[number];
export const TOP_BY = ["model", "user", "api_key", "team"] as const;

const DAY = 86_400_000;
// The longest range per granularity: a chart of at most ~750 hourly, ~370 daily or 120 monthly points.
const MAX_RANGE_MS: Record<Granularity, number> = { hour: 31 * DAY, day: 366 * DAY, month: 3660 * DAY };

// Column and label of each grouping; the label comes from the platform's identity tables or the ai module's
// providers (a reporting join behind this module's action), and is absent for a removed user, key or team. Teams are
// read from their own aggregates (`teams`): an event is in each of its user's teams, and in none if they have none.
const GROUP_SQL: Record<Group, { column: string; label: string; join: string; teams?: true }> = {
	model: { column: "a.model", label: "a.model", join: "" },
	kind: { column: "a.kind", label: "a.kind", join: "" },
	user: {
		column: "a.user_id",
		label: "coalesce(u.name, u.email)",
		join: "LEFT JOIN users u ON u.id = a.user_id"
	},
	api_key: {
		column: "a.api_key_id",
		label: "k.name",
		join: "LEFT JOIN api_keys k ON k.id = a.api_key_id AND k.organization_id = a.organization_id"
	},
	team: {
		column: "a.team_id",
		label: "t.name",
		join: "LEFT JOIN teams t ON t.id = a.team_id AND t.organization_id = a.organization_id",
		teams: true
	},
	provider: {
		column: "a.provider_id",
		label: "p.name",
		join: "LEFT JOIN ai_providers p ON p.id = a.provider_id AND p.organization_id = a.organization_id"
	}
};

export interface Range {
	from: Date;
	to: Date;
}

function date(field: string, value: unknown, fallback: Date): Date {
	if (value === undefined || value === "") return fallback;
	const d = typeof value === "string" || value instanceof Date ? new Date(value) : new Date(NaN);
	if (Number.isNaN(d.getTime())) throw invalid(field, "must be a date and time (ISO 8601)");
	return d;
}

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[], fallback: T): T {
	if (value === undefined || value === "") return fallback;
	if (typeof value !== "string" || !allowed.includes(value as T))
		throw invalid(field, `must be one of ${allowed.join(", ")}`);
	return value as T;
}

// [from, to): `to` defaults to now, `from` to 30 days before it (or the granularity's longest range, if shorter).
export function rangeOf(params: { from?: unknown; to?: unknown }, g: Granularity = "day"): Range {
	const to = date("to", params.to, new Date());
	const from = date("from", params.from, new Date(to.getTime() - Math.min(30 * DAY, MAX_RANGE_MS[g])));
	if (from >= to) throw invalid("from", "must be before to");
	if (to.getTime() - from.getTime() > MAX_RANGE_MS[g])
		throw invalid("to", `a range by ${g} spans at most ${Math.round(MAX_RANGE_MS[g] / DAY)} days`);
	return { from, to };
}

export const granularityOf = (v: unknown) => oneOf("granularity", v, GRANULARITIES, "day");
export const groupOf = (v: unknown) =>
	v === undefined || v === "" ? undefined : oneOf("group_by", v, GROUPS, "model");

// "cost,requests" or ["cost", "requests"]; every measure when absent.
export function metricsOf(v: unknown): Measure[] {
	if (v === undefined || v === "") return [...MEASURES];
	const list = Array.isArray(v) ? v : typeof v === "string" ? v.split(",") : undefined;
	if (!list || !list.length) throw invalid("metrics", `must be a list of ${MEASURES.join(", ")}`);
	const out = list.map(m => String(m).trim());
	const bad = out.find(m => !MEASURES.includes(m as Measure));
	if (bad !== undefined) throw invalid("metrics", `unknown metric "${bad}": use ${MEASURES.join(", ")}`);
	return [...new Set(out)] as Measure[];
}

// Sums as JSON numbers (token counts fit a double; cost is for display, exact in the database and the CSV).
const sums = (metrics: readonly Measure[], numeric: boolean) =>
	metrics.map(m => (numeric ? `sum(a.${m})::float8 AS ${m}` : `sum(a.${m})::text AS ${m}`)).join(", ");

// Buckets of granularity g overlapping [from, to): a bucket is counted whole, from its start.
const RANGE_WHERE = "a.organization_id = $org AND a.bucket >= date_trunc($1, $2::timestamptz, 'UTC') AND a.bucket < $3";

export type SeriesRow = { bucket: string; key?: string | null; label?: string | null } & Record<string, unknown>;

export async function series(
	db: TenantSql,
	g: Granularity,
	range: Range,
	metrics: Measure[],
	group?: Group,
	exact = false
): Promise<SeriesRow[]> {
	const by = group ? GROUP_SQL[group] : undefined;
	return db.rows<SeriesRow>(
		`SELECT a.bucket${by ? `, ${by.column}::text AS key, max(${by.label}) AS label` : ""}, ${sums(metrics, !exact)}
		 FROM ${by?.teams ? teamTableOf(g) : tableOf(g)} a ${by?.join ?? ""}
		 WHERE ${RANGE_WHERE}
		 GROUP BY a.bucket${by ? `, ${by.column}` : ""}
		 ORDER BY a.bucket${by ? `, ${by.column} NULLS FIRST` : ""}`,
		[g, range.from, range.to]
	);
}

export async function top(db: TenantSql, by: Group, range: Range, metric: Measure, limit: number) {
	const g = GROUP_SQL[by];
	// Daily buckets: the range is counted by whole UTC days.
	return db.rows(
		`SELECT ${g.column}::text AS key, max(${g.label}) AS label, ${sums(MEASURES, true)}
		 FROM ${g.teams ? teamTableOf("day") : tableOf("day")} a ${g.join}
		 WHERE ${RANGE_WHERE}
		 GROUP BY ${g.column}
		 ORDER BY sum(a.${metric}) DESC, ${g.column} NULLS FIRST
		 LIMIT ${limit}`,
		["day", range.from, range.to]
	);
}

export async function summary(db: TenantSql, range: Range) {
	const [totals] = await db.rows(
		`SELECT ${sums(MEASURES, true)} FROM usage_aggregates_daily a WHERE ${RANGE_WHERE}`,
		["day", range.from, range.to]
	);
	const byKind = await db.rows(
		`SELECT a.kind, ${sums(MEASURES, true)} FROM usage_aggregates_daily a WHERE ${RANGE_WHERE}
		 GROUP BY a.kind ORDER BY a.kind`,
		["day", range.from, range.to]
	);
	const zero = Object.fromEntries(MEASURES.map(m => [m, 0]));
	const clean = (r: Record<string, unknown>) =>
		Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v ?? 0])) as Record<string, number>;
	return { ...zero, ...clean(totals ?? {}), by_kind: byKind.map(clean) };
}
