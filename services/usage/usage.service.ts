// usage: metering of what AI calls use. Consumes ai.events, mcp.events and embedding.events (group "usage") in batches, recording each
// ai.usage.recorded event exactly once with the aggregates it adds to in the same transaction (EventsMixin's batched
// mode); answers reports over the aggregates (time series, top-N, summary, CSV).
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import type { Queryable } from "../../lib/db";
import { tenantSql } from "../../lib/db/tenant";
import { asCsvDownload, toCsv } from "../../lib/csv";
import { EventsMixin } from "../../mixins/events.mixin";
import { moduleSettings } from "../../lib/config";
import usageModule from "./usage.module";
import type { AIEvent, AIUsage } from "../ai/ai.events";
import {
	isToolExecuted,
	MEASURES,
	recordUsage,
	TOOL_EXECUTED,
	toolCallOf,
	type Measure,
	type UsageRecord
} from "./aggregates";
import type { EventTypeOf } from "../../lib/events/types";
import { granularityOf, groupOf, metricsOf, rangeOf, series, summary, top, TOP_BY } from "./reports";
import * as R from "./usage.responses";
import "./usage.events";
import "../ai/ai.events";
import type { McpEvent } from "../mcp/mcp.events";
import "../mcp/mcp.events";
import type { EmbeddingEvent } from "../embeddings/embeddings.events";
import "../embeddings/embeddings.events";

type UsageRecorded = Extract<AIEvent, { type: "ai.usage.recorded" }>;
type LocalEmbedded = Extract<EmbeddingEvent, { type: "embedding.usage.recorded" }>;

// What the built-in embedder embedded in one write, as usage of kind "embedding" under the model's name: its texts
// count as embeddings (no model request), its tokens as input; priced by the price list (nothing without a row).
const localEmbeddingOf = (e: LocalEmbedded): UsageRecord => ({
	id: e.id,
	time: e.time,
	requestId: e.id,
	organizationId: e.organizationId,
	service: "embeddings",
	kind: "embedding",
	requestedModel: e.model,
	model: e.model,
	status: "success",
	cacheHit: false,
	inputTokens: e.tokens,
	outputTokens: 0,
	cachedTokens: 0,
	cacheWriteTokens: 0,
	toolCalls: 0,
	textsEmbedded: e.texts,
	cost: 0,
	occurredAt: e.time
});

// Batch size, wait and concurrency: the module's settings (USAGE_BATCH_*), read when the service is created.
function batchOptions() {
	const s = moduleSettings(usageModule);
	return { max: s.batchMax, ms: s.batchMs, concurrency: s.batchConcurrency };
}

const rangeParams = { from: "string|optional", to: "string|optional" };
const reportParams = {
	$$strict: true,
	...rangeParams,
	granularity: "string|optional",
	group_by: "string|optional",
	metrics: { type: "multi", optional: true, rules: ["string", { type: "array", items: "string" }] }
};
type ReportParams = { from?: string; to?: string; granularity?: string; group_by?: string; metrics?: unknown };

function seriesOf(ctx: Context<ReportParams>, exact: boolean) {
	const g = granularityOf(ctx.params.granularity);
	const range = rangeOf(ctx.params, g);
	const group = groupOf(ctx.params.group_by);
	const metrics = metricsOf(ctx.params.metrics);
	return { g, range, group, metrics, rows: series(tenantSql(ctx), g, range, metrics, group, exact) };
}

const UsageService: ServiceSchema = {
	name: "usage",
	mixins: [EventsMixin],
	settings: { rest: "/usage" },

	actions: {
		series: {
			rest: "GET /series",
			permission: "usage:read",
			response: R.UsageSeries,
			params: reportParams,
			async handler(ctx: Context<ReportParams>) {
				const s = seriesOf(ctx, false);
				return {
					granularity: s.g,
					from: s.range.from,
					to: s.range.to,
					group_by: s.group ?? null,
					metrics: s.metrics,
					points: await s.rows
				};
			}
		},

		top: {
			rest: "GET /top",
			permission: "usage:read",
			response: R.UsageTop,
			params: {
				$$strict: true,
				...rangeParams,
				by: { type: "enum", values: [...TOP_BY] },
				metric: { type: "enum", values: [...MEASURES], optional: true },
				limit: { type: "number", integer: true, min: 1, max: 100, convert: true, optional: true }
			},
			async handler(
				ctx: Context<{
					from?: string;
					to?: string;
					by: (typeof TOP_BY)[number];
					metric?: Measure;
					limit?: number;
				}>
			) {
				const range = rangeOf(ctx.params, "day");
				const metric = ctx.params.metric ?? "cost";
				const rows = await top(tenantSql(ctx), ctx.params.by, range, metric, ctx.params.limit ?? 10);
				return { by: ctx.params.by, metric, from: range.from, to: range.to, rows };
			}
		},

		summary: {
			rest: "GET /summary",
			permission: "usage:read",
			response: R.UsageSummary,
			params: { $$strict: true, ...rangeParams },
			async handler(ctx: Context<{ from?: string; to?: string }>) {
				const range = rangeOf(ctx.params, "day");
				return { from: range.from, to: range.to, ...(await summary(tenantSql(ctx), range)) };
			}
		},

		// The series as CSV, the cost exact (as stored) rather than a JSON number.
		export: {
			rest: "GET /export",
			permission: "usage:read",
			response: "string",
			responseType: "text/csv",
			params: reportParams,
			async handler(ctx: Context<ReportParams>) {
				const s = seriesOf(ctx, true);
				const rows = (await s.rows).map(r => ({ ...r, bucket: new Date(r.bucket).toISOString() }));
				const columns = ["bucket", ...(s.group ? ["key", "label"] : []), ...s.metrics];
				asCsvDownload(
					ctx.meta as Record<string, unknown>,
					`usage-${s.g}-${s.range.from.toISOString().slice(0, 10)}.csv`
				);
				return toCsv(columns, rows);
			}
		}
	},

	channels: {
		"ai.events": {
			group: "usage",
			batch: batchOptions,
			// Only what a request used matters here; other ai events are acknowledged and left alone.
			types: ["ai.usage.recorded"] satisfies EventTypeOf<"ai.events">[],
			async handler(events: AIEvent[], tx: Queryable) {
				const usage = events.filter((e): e is UsageRecorded => e.type === "ai.usage.recorded");
				await recordUsage(tx, usage as (AIUsage & { id: string; time: string })[]);
			}
		},
		// Every finished MCP tool execution, metered as a tool call.
		"mcp.events": {
			group: "usage",
			batch: batchOptions,
			types: TOOL_EXECUTED,
			async handler(events: McpEvent[], tx: Queryable) {
				await recordUsage(tx, events.filter(isToolExecuted).map(toolCallOf));
			}
		},
		// What the built-in embedder embedded (embeddings through a deployment come on ai.events, not here).
		"embedding.events": {
			group: "usage",
			batch: batchOptions,
			types: ["embedding.usage.recorded"] satisfies EventTypeOf<"embedding.events">[],
			async handler(events: EmbeddingEvent[], tx: Queryable) {
				const local = events.filter((e): e is LocalEmbedded => e.type === "embedding.usage.recorded");
				await recordUsage(tx, local.map(localEmbeddingOf));
			}
		}
	}
};
export default UsageService;
