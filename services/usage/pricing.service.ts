// usage-pricing: the organization's price list by model, versioned by effective date (a row is never changed: a new
// one takes over from its effective_from). Events are priced when recorded, at the row in force when they happened;
// re-pricing a past period (after adding or removing a row) is the explicit `reprice`, which recomputes the events'
// cost and rebuilds the aggregate buckets they fall in, in one transaction that holds back only that organization's
// ingestion.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb } from "../../lib/db";
import { tenantSql, TenantSql } from "../../lib/db/tenant";
import { authOf } from "../../lib/authz";
import { invalid } from "../../lib/errors";
import { DbMixin, type DbService } from "../../mixins/db.mixin";
import { COST_SQL, GRANULARITIES, orgLockKey, PRICE_JOIN, rebuildAggregates } from "./aggregates";
import * as R from "./usage.responses";

const price = (label: string) => ({ type: "number", min: 0, max: 1_000_000, label });
const MAX_REPRICE_DAYS = 366;

interface Self extends DbService {
	_create(ctx: Context, params: Record<string, unknown>): Promise<unknown>;
}

const UsagePricingService: ServiceSchema = {
	name: "usage-pricing",
	mixins: [
		DbMixin({
			table: "usage_pricing",
			columns: [
				"id",
				"organization_id",
				"model",
				"input_price",
				"output_price",
				"cached_input_price",
				"cache_write_price",
				"effective_from",
				"created_by",
				"created_at"
			],
			writable: {
				model: { type: "string", min: 1, max: 200, trim: true, label: "Model" },
				input_price: price("Input price"),
				output_price: price("Output price"),
				cached_input_price: { ...price("Cached input price"), optional: true, default: 0 },
				cache_write_price: { ...price("Cache write price"), optional: true, nullable: true },
				effective_from: { type: "date", convert: true, optional: true, label: "Effective from" }
			},
			tenant: true,
			searchFields: ["model"],
			permissions: { read: "usage:read", write: "usage:manage" },
			rest: "/usage/pricing",
			entityName: "price",
			schemaName: "UsagePricing",
			entity: {
				input_price: "number",
				output_price: "number",
				cached_input_price: "number",
				cache_write_price: "number|nullable",
				effective_from: "date",
				created_by: "uuid|nullable"
			}
		})
	],

	actions: {
		// A price is never changed in place: a new version is a new row with its own effective_from.
		update: false,

		create: {
			handler(this: Self, ctx: Context<Record<string, unknown>>) {
				const effective = (ctx.params.effective_from as Date | undefined) ?? new Date();
				return this._create(ctx, {
					...ctx.params,
					effective_from: effective,
					created_by: authOf(ctx)?.userId ?? null
				});
			}
		},

		reprice: {
			rest: "POST /reprice",
			permission: "usage:manage",
			response: R.UsageRepriced,
			params: {
				$$strict: true,
				from: { type: "date", convert: true, label: "From" },
				to: { type: "date", convert: true, label: "To" },
				model: { type: "string", min: 1, max: 200, trim: true, optional: true, label: "Model" }
			},
			async handler(ctx: Context<{ from: Date; to: Date; model?: string }>) {
				const { from, to } = ctx.params;
				const model = ctx.params.model ?? null;
				if (from >= to) throw invalid("from", "must be before to");
				if (to.getTime() - from.getTime() > MAX_REPRICE_DAYS * 86_400_000)
					throw invalid("to", `a re-pricing spans at most ${MAX_REPRICE_DAYS} days`);
				const scope = tenantSql(ctx);
				return (await getDb()).transaction(async tx => {
					// That organization's ingestion waits meanwhile (and in-flight batches of it are waited for): no
					// event of it is added to a bucket between its recount and the commit. Others go on.
					await tx.query(`SELECT pg_advisory_xact_lock(${orgLockKey("$1")})`, [scope.organizationId]);
					const t = new TenantSql(scope.organizationId, scope.auth, tx);
					const period = "e.organization_id = $org AND e.occurred_at >= $1 AND e.occurred_at < $2";
					const modelIs = "($3::text IS NULL OR e.model = $3)";
					const [before] = await t.rows(
						`SELECT count(*)::int AS events, coalesce(sum(e.cost), 0) AS cost
						 FROM usage_events e WHERE ${period} AND ${modelIs}`,
						[from, to, model]
					);
					const { rowCount: changed } = await t.query(
						`UPDATE usage_events u SET cost = x.cost, pricing_id = x.pricing_id
						 FROM (SELECT e.id, ${COST_SQL} AS cost, p.id AS pricing_id
						       FROM usage_events e ${PRICE_JOIN} WHERE ${period} AND ${modelIs}) x
						 WHERE u.id = x.id AND (u.cost <> x.cost OR u.pricing_id IS DISTINCT FROM x.pricing_id)`,
						[from, to, model]
					);
					const [after] = await t.rows(
						`SELECT coalesce(sum(e.cost), 0) AS cost FROM usage_events e WHERE ${period} AND ${modelIs}`,
						[from, to, model]
					);
					const buckets: Record<string, number> = {};
					for (const g of GRANULARITIES) buckets[g] = await rebuildAggregates(t, g, from, to, model);
					return {
						from,
						to,
						model,
						events: before.events,
						changed,
						cost_before: before.cost,
						cost_after: after.cost,
						buckets
					};
				});
			}
		}
	}
};
export default UsagePricingService;
