// The prompts experiments tables: an organization's experiments (read through the tenant helper, `$org`), their
// variants, and the per-variant figures computed from the executions they were assigned.
import type { Queryable } from "../../lib/db";
import { isUuid } from "../../lib/db/tenant";
import { notFound } from "../../lib/errors";
import type { Metric, Sample } from "./experiments";
import { Store, type VersionRow } from "./store";

export interface ExperimentRow {
	id: string;
	organization_id: string;
	template_id: string;
	name: string;
	label: string;
	metric: Metric;
	min_samples: number;
	confidence: number;
	sticky_by: "user" | "session";
	status: "running" | "completed" | "stopped";
	winner_variant_id: string | null;
	started_by: string | null;
	started_at: Date;
	ended_at: Date | null;
}

export interface VariantRow {
	id: string;
	experiment_id: string;
	version_id: string;
	weight: number;
	position: number;
}

// A running experiment as render needs it: each variant with its version's content.
export interface RunningExperiment {
	id: string;
	sticky_by: "user" | "session";
	variants: { id: string; weight: number; version: VersionRow }[];
}

// The observed value of each metric in an execution row (`e`): success as 0/1.
const METRIC_SQL: Record<Metric, string> = {
	success: "e.success::int",
	feedback: "e.feedback",
	latency: "e.latency_ms",
	cost: "e.cost"
};

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export class ExperimentStore extends Store {
	async experiment(id: unknown, lock = false): Promise<ExperimentRow> {
		if (!isUuid(id)) throw notFound("prompt experiment");
		const [row] = await this.rows<ExperimentRow>(
			`SELECT * FROM prompts_experiments WHERE id = $1 AND organization_id = $org${lock ? " FOR UPDATE" : ""}`,
			[id]
		);
		if (!row) throw notFound("prompt experiment");
		return row;
	}

	async experiments(q: { template_id?: string; status?: string }): Promise<ExperimentRow[]> {
		return this.rows<ExperimentRow>(
			`SELECT * FROM prompts_experiments WHERE organization_id = $org
			 AND ($1::uuid IS NULL OR template_id = $1) AND ($2::text IS NULL OR status = $2)
			 ORDER BY started_at DESC, id LIMIT 500`,
			[q.template_id ?? null, q.status ?? null]
		);
	}

	async variants(experimentId: string): Promise<(VariantRow & { version: number })[]> {
		const { rows } = await this.db.query(
			`SELECT v.*, pv.number AS version FROM prompts_variants v JOIN prompts_versions pv ON pv.id = v.version_id
			 WHERE v.experiment_id = $1 ORDER BY v.position`,
			[experimentId]
		);
		return rows;
	}

	// Per variant, in order: the figures clients see, and the metric's sample for the test.
	async figures(e: ExperimentRow) {
		const m = METRIC_SQL[e.metric];
		const { rows } = await this.db.query(
			`SELECT v.id, pv.number AS version, v.weight,
				count(${m})::int AS samples,
				count(*) FILTER (WHERE e.success)::int AS successes,
				avg(e.success::int) AS conversion, avg(e.feedback) AS mean_feedback, avg(e.latency_ms) AS mean_latency_ms,
				avg(e.cost) AS mean_cost, avg(e.prompt_tokens + e.completion_tokens) AS mean_tokens,
				avg(${m}) AS metric_mean, var_samp(${m}) AS metric_var
			 FROM prompts_variants v JOIN prompts_versions pv ON pv.id = v.version_id
			 LEFT JOIN prompts_executions e ON e.variant_id = v.id AND e.experiment_id = v.experiment_id
			 WHERE v.experiment_id = $1 GROUP BY v.id, pv.number ORDER BY v.position`,
			[e.id]
		);
		const variants = rows.map(r => ({
			id: r.id as string,
			version: r.version as number,
			weight: Number(r.weight),
			samples: r.samples as number,
			successes: r.successes as number,
			conversion: num(r.conversion),
			mean_feedback: num(r.mean_feedback),
			mean_latency_ms: num(r.mean_latency_ms),
			mean_cost: num(r.mean_cost),
			mean_tokens: num(r.mean_tokens)
		}));
		const samples: Sample[] = rows.map(r => ({
			id: r.id,
			n: r.samples,
			mean: num(r.metric_mean),
			variance: num(r.metric_var)
		}));
		return { variants, samples };
	}

	// Each variant's executions by hour.
	async series(experimentId: string) {
		const { rows } = await this.db.query(
			`SELECT e.variant_id, date_trunc('hour', e.created_at) AS bucket, count(*)::int AS samples,
				avg(e.success::int) AS conversion, avg(e.latency_ms) AS mean_latency_ms, avg(e.cost) AS mean_cost
			 FROM prompts_executions e WHERE e.experiment_id = $1 AND e.variant_id IS NOT NULL
			 GROUP BY 1, 2 ORDER BY 2, 1`,
			[experimentId]
		);
		return rows.map(r => ({
			variant_id: r.variant_id,
			bucket: new Date(r.bucket).toISOString(),
			samples: r.samples,
			conversion: num(r.conversion),
			mean_latency_ms: num(r.mean_latency_ms),
			mean_cost: num(r.mean_cost)
		}));
	}

	// The experiment running on (template, label), with its variants' versions; undefined when none runs.
	static async running(db: Queryable, templateId: string, label: string): Promise<RunningExperiment | undefined> {
		const { rows } = await db.query(
			`SELECT x.id, x.sticky_by, v.id AS variant_id, v.weight, to_jsonb(pv.*) AS version
			 FROM prompts_experiments x JOIN prompts_variants v ON v.experiment_id = x.id
			 JOIN prompts_versions pv ON pv.id = v.version_id
			 WHERE x.template_id = $1 AND x.label = $2 AND x.status = 'running' ORDER BY v.position`,
			[templateId, label]
		);
		if (!rows.length) return undefined;
		return {
			id: rows[0].id,
			sticky_by: rows[0].sticky_by,
			variants: rows.map(r => ({ id: r.variant_id, weight: Number(r.weight), version: r.version }))
		};
	}
}
