// prompts-experiments: a template's label split between versions by weight (prompts.render picks the variant,
// experiments.ts), measured from the executions each variant served, and ended by the significance test (the winner
// takes the label) or by hand. Ending and starting drop every replica's resolved renders (`prompts.changed`).
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb as db } from "../../lib/db";
import { tenantSql } from "../../lib/db/tenant";
import { broadcast } from "../../lib/events/broadcast";
import { announceChange, type ChangeAction } from "../../lib/live";
import { conflict, invalid } from "../../lib/errors";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import { HousekeepingMixin } from "../../mixins/housekeeping.mixin";
import type { Queryable } from "../../lib/db";
import { variantLetter, verdictOf, type Verdict } from "./experiments";
import { ExperimentStore, type ExperimentRow } from "./experiments.store";
import { moveIn } from "./labels.actions";
import { labelName } from "./prompts.params";
import type { Scope, TemplateRow, VersionRow } from "./store";
import * as R from "./prompts.responses";
import "./prompts.events";

const EVALUATE_EVERY_MS = 60_000;

// An experiment as clients read it.
const shapeOf = ({ organization_id: _org, ...e }: ExperimentRow) => e;

interface Self {
	broker: Context["broker"];
	logger: Context["broker"]["logger"];
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
	scopeOf(ctx: Context): Scope;
	detail(store: ExperimentStore, e: ExperimentRow): Promise<unknown>;
	finish(
		store: ExperimentStore,
		publish: Publish,
		e: ExperimentRow,
		status: "completed" | "stopped",
		winnerVariantId: string | null
	): Promise<{ name: string }>;
	ended(name: string, e: ExperimentRow, action: ChangeAction, ctx?: Context): Promise<void>;
	evaluate(organizationId: string, id: string): Promise<void>;
}

interface StartParams {
	template_id: string;
	name: string;
	label: string;
	variants: { version: number; weight: number }[];
	metric: ExperimentRow["metric"];
	min_samples: number;
	confidence: number;
	sticky_by: ExperimentRow["sticky_by"];
}

const PromptsExperimentsService: ServiceSchema = {
	name: "prompts-experiments",
	mixins: [
		EventsMixin,
		HousekeepingMixin("evaluateRunning", EVALUATE_EVERY_MS, "evaluate running prompt experiments")
	],
	settings: { rest: "/prompts/experiments" },

	actions: {
		start: {
			rest: "POST /",
			permission: "prompts:manage",
			params: {
				$$strict: true,
				template_id: { type: "string", label: "Template" },
				name: { type: "string", min: 1, max: 200, trim: true, label: "Name" },
				label: { ...labelName, default: "production" },
				variants: {
					type: "array",
					min: 2,
					max: 5,
					label: "Variants",
					items: {
						type: "object",
						strict: true,
						props: {
							version: { type: "number", integer: true, positive: true },
							weight: { type: "number", positive: true, max: 1_000_000 }
						}
					}
				},
				metric: { type: "enum", values: ["success", "feedback", "latency", "cost"], label: "Metric" },
				min_samples: { type: "number", integer: true, positive: true, max: 1_000_000, default: 100 },
				confidence: { type: "number", gt: 0.5, lt: 1, default: 0.95, label: "Confidence" },
				sticky_by: { type: "enum", values: ["user", "session"], default: "user", label: "Sticky by" }
			},
			response: R.PromptExperimentDetail,
			async handler(this: Self, ctx: Context<StartParams>) {
				const p = ctx.params;
				const numbers = p.variants.map(v => v.version);
				if (new Set(numbers).size !== numbers.length)
					throw invalid("variants", "each variant must be a different version");
				const { t, out } = await this.withEvents(async (tx, publish) => {
					const store = new ExperimentStore(tx, this.scopeOf(ctx));
					const t = await store.own(p.template_id);
					if (!(await store.labelled(t.id, p.label)))
						throw invalid("label", `this template has no label ${p.label}`);
					const versions: VersionRow[] = [];
					for (const n of numbers) versions.push(await store.version(t.id, n, "variants"));
					const [e] = await store
						.rows<ExperimentRow>(
							`INSERT INTO prompts_experiments (organization_id, template_id, name, label, metric, min_samples,
								confidence, sticky_by, started_by)
							 VALUES ($org, $1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
							[t.id, p.name, p.label, p.metric, p.min_samples, p.confidence, p.sticky_by, store.userId]
						)
						.catch(err => {
							throw err?.code === "23505"
								? conflict(
										`an experiment is already running on label ${p.label} of this template`,
										"label"
									)
								: err;
						});
					for (const [i, v] of versions.entries())
						await tx.query(
							"INSERT INTO prompts_variants (experiment_id, version_id, weight, position) VALUES ($1, $2, $3, $4)",
							[e.id, v.id, p.variants[i].weight, i]
						);
					publish("prompts.experiment.started", {
						organizationId: e.organization_id,
						experimentId: e.id,
						templateId: t.id,
						label: e.label
					});
					return { t, out: { e, detail: await this.detail(store, e) } };
				});
				await this.ended(t.name, out.e, "created", ctx);
				return out.detail;
			}
		},

		list: {
			rest: "GET /",
			permission: "prompts:read",
			params: {
				template_id: { type: "uuid", optional: true, label: "Template" },
				status: { type: "enum", values: ["running", "completed", "stopped"], optional: true, label: "Status" }
			},
			response: { type: "array", items: R.PromptExperiment },
			async handler(this: Self, ctx: Context<{ template_id?: string; status?: string }>) {
				return (await new ExperimentStore(await db(), this.scopeOf(ctx)).experiments(ctx.params)).map(shapeOf);
			}
		},

		get: {
			rest: "GET /:id",
			permission: "prompts:read",
			params: { id: "string" },
			response: R.PromptExperimentDetail,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const store = new ExperimentStore(await db(), this.scopeOf(ctx));
				return this.detail(store, await store.experiment(ctx.params.id));
			}
		},

		// Ends a running experiment now; with `promote_variant_id`, that variant's version takes the label.
		stop: {
			rest: "POST /:id/stop",
			permission: "prompts:manage",
			params: { id: "string", promote_variant_id: { type: "uuid", optional: true, label: "Promote variant" } },
			response: R.PromptExperimentDetail,
			async handler(this: Self, ctx: Context<{ id: string; promote_variant_id?: string }>) {
				const { name, e, detail } = await this.withEvents(async (tx, publish) => {
					const store = new ExperimentStore(tx, this.scopeOf(ctx));
					const e = await store.experiment(ctx.params.id, true);
					if (e.status !== "running") throw conflict("this experiment is not running", "id");
					const promote = ctx.params.promote_variant_id ?? null;
					if (promote && !(await store.variants(e.id)).some(v => v.id === promote))
						throw invalid("promote_variant_id", "not a variant of this experiment");
					const { name } = await this.finish(store, publish, e, "stopped", promote);
					const ended = await store.experiment(e.id);
					return { name, e: ended, detail: await this.detail(store, ended) };
				});
				await this.ended(name, e, "updated", ctx);
				return detail;
			}
		},

		// Runs the test of one running experiment and completes it when it has a winner (after an outcome is
		// recorded; also every minute for every running experiment).
		evaluate: {
			visibility: "protected",
			params: { organizationId: "uuid", id: "uuid" },
			async handler(this: Self, ctx: Context<{ organizationId: string; id: string }>) {
				await this.evaluate(ctx.params.organizationId, ctx.params.id);
			}
		}
	},

	methods: {
		scopeOf(ctx: Context): Scope {
			const t = tenantSql(ctx);
			return { organizationId: t.organizationId, auth: t.auth };
		},

		async detail(store: ExperimentStore, e: ExperimentRow) {
			const { variants, samples } = await store.figures(e);
			let verdict:
				Verdict | { status: "stopped"; winner_variant_id: string | null; p_value: null; reason: string };
			const test = verdictOf(samples, e.metric, e.min_samples, e.confidence);
			if (e.status === "running") verdict = test;
			else if (e.status === "completed")
				// Outcomes reported after the end may move the figures; the call made stays what is shown.
				verdict =
					test.status === "winner" && test.winner_variant_id === e.winner_variant_id
						? test
						: {
								status: "winner",
								winner_variant_id: e.winner_variant_id,
								p_value: null,
								reason: `${variantLetter(variants.findIndex(v => v.id === e.winner_variant_id))} won`
							};
			else {
				const promoted = variants.findIndex(v => v.id === e.winner_variant_id);
				verdict = {
					status: "stopped",
					winner_variant_id: e.winner_variant_id,
					p_value: null,
					reason:
						promoted >= 0
							? `Stopped; ${variantLetter(promoted)} (version ${variants[promoted].version}) promoted`
							: "Stopped without a winner"
				};
			}
			return { experiment: shapeOf(e), variants, verdict, series: await store.series(e.id) };
		},

		// Ends the experiment: status, winner, the label moved to the winner's version (by the system: a protected
		// label too), prompts.experiment.completed.
		async finish(
			this: Self,
			store: ExperimentStore,
			publish: Publish,
			e: ExperimentRow,
			status: "completed" | "stopped",
			winnerVariantId: string | null
		) {
			const { rows: templates } = await store.db.query<TemplateRow>(
				"SELECT * FROM prompts_templates WHERE id = $1 FOR UPDATE",
				[e.template_id]
			);
			const t = templates[0];
			let winnerVersionId: string | null = null;
			if (winnerVariantId) {
				const { rows } = await store.db.query<VersionRow>(
					`SELECT pv.* FROM prompts_variants v JOIN prompts_versions pv ON pv.id = v.version_id WHERE v.id = $1`,
					[winnerVariantId]
				);
				winnerVersionId = rows[0].id;
				await moveIn(store, publish, t, e.label, rows[0], true);
			}
			await store.db.query(
				`UPDATE prompts_experiments SET status = $2, winner_variant_id = $3, ended_at = now() WHERE id = $1`,
				[e.id, status, winnerVariantId]
			);
			publish("prompts.experiment.completed", {
				organizationId: e.organization_id,
				experimentId: e.id,
				templateId: e.template_id,
				label: e.label,
				winnerVariantId,
				winnerVersionId
			});
			return { name: t.name };
		},

		// Every replica drops what it resolved for the template (renders stop or start splitting at once); the
		// organization's open pages are told.
		async ended(this: Self, name: string, e: ExperimentRow, action: ChangeAction, ctx?: Context) {
			await broadcast(this.broker, "prompts.changed", { name });
			announceChange(this.broker, ctx, {
				organizationId: e.organization_id,
				entity: "prompts-experiments",
				noun: "prompt experiment",
				id: e.id,
				action,
				label: e.name,
				permission: "prompts:read"
			});
		},

		async evaluate(this: Self, organizationId: string, id: string) {
			const winner = async (store: ExperimentStore, e: ExperimentRow) => {
				if (e.status !== "running") return undefined;
				const v = verdictOf((await store.figures(e)).samples, e.metric, e.min_samples, e.confidence);
				return v.status === "winner" ? v.winner_variant_id : undefined;
			};
			// Most outcomes decide nothing: tested without a lock first, so concurrent outcomes do not queue.
			const reader = new ExperimentStore(await db(), { organizationId });
			if (!(await winner(reader, await reader.experiment(id)))) return;
			const done = await this.withEvents(async (tx, publish) => {
				const store = new ExperimentStore(tx, { organizationId });
				const e = await store.experiment(id, true);
				const w = await winner(store, e);
				if (!w) return undefined;
				const { name } = await this.finish(store, publish, e, "completed", w);
				return { name, e };
			});
			if (done) await this.ended(done.name, done.e, "updated");
		},

		async evaluateRunning(this: Self) {
			const { rows } = await (
				await db()
			).query<{ id: string; organization_id: string }>(
				"SELECT id, organization_id FROM prompts_experiments WHERE status = 'running'"
			);
			for (const r of rows)
				await this.evaluate(r.organization_id, r.id).catch(err =>
					this.logger.warn(`Could not evaluate prompt experiment ${r.id}:`, (err as Error).message)
				);
		}
	} as ServiceSchema["methods"]
};

export default PromptsExperimentsService;
