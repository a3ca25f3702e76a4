// prompts-executions: the organization's record of renders and completions (one row each, written by the prompts
// service), read with DbMixin's scoped list, and the outcome a caller reports for one (success, a feedback score),
// which experiments count.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { notFound } from "../../lib/errors";
import { DbMixin, type DbService } from "../../mixins/db.mixin";

const COLUMNS = [
	"id",
	"organization_id",
	"template_id",
	"version_id",
	"variant_id",
	"experiment_id",
	"kind",
	"subject",
	"user_id",
	"request_id",
	"latency_ms",
	"prompt_tokens",
	"completion_tokens",
	"cost",
	"success",
	"feedback",
	"error",
	"created_at"
];

const PromptsExecutionsService: ServiceSchema = {
	name: "prompts-executions",
	mixins: [
		DbMixin({
			table: "prompts_executions",
			columns: COLUMNS,
			writable: {},
			tenant: true,
			permissions: { read: "prompts:read", write: "prompts:write" },
			rest: "/prompts/executions",
			entityName: "prompt execution",
			schemaName: "PromptExecution",
			entity: {
				template_id: "uuid",
				version_id: "uuid",
				variant_id: "uuid|nullable",
				experiment_id: "uuid|nullable",
				kind: { type: "enum", values: ["render", "complete"] },
				subject: "string|nullable",
				user_id: "uuid|nullable",
				request_id: "string|nullable",
				latency_ms: "number|integer|nullable",
				prompt_tokens: "number|integer|nullable",
				completion_tokens: "number|integer|nullable",
				cost: "string|nullable",
				success: "boolean|nullable",
				feedback: "number|nullable",
				error: "string|nullable"
			}
		})
	],
	actions: {
		// Rows are written by renders and completions only, and never removed one by one.
		find: false,
		count: false,
		create: false,
		update: false,
		remove: false,

		// What came of an execution, as its caller judges it: task success and/or a score from -1 to 1.
		feedback: {
			rest: "POST /:id/feedback",
			permission: "prompts:write",
			params: {
				$$strict: true,
				id: "string",
				success: { type: "boolean", optional: true, label: "Success" },
				feedback: { type: "number", min: -1, max: 1, optional: true, label: "Feedback" }
			},
			async handler(this: DbService, ctx: Context<{ id: string; success?: boolean; feedback?: number }>) {
				const { id, ...outcome } = ctx.params;
				const doc = await this.findScoped(ctx, id);
				if (!Object.keys(outcome).length) return this.transformDocuments(ctx, {}, doc);
				const rows = await this.adapter.updateMany(this.scope(ctx, { id }), { $set: outcome });
				if (!rows.length) throw notFound("prompt execution");
				await this.clearCache();
				// An outcome in an experiment may decide it: the test runs now rather than at the next round.
				const row = rows[0] as { organization_id: string; experiment_id: string | null };
				if (row.experiment_id)
					await ctx
						.call("prompts-experiments.evaluate", {
							organizationId: row.organization_id,
							id: row.experiment_id
						})
						.catch(err =>
							this.logger.warn("Could not evaluate the prompt experiment:", (err as Error).message)
						);
				return this.transformDocuments(ctx, {}, rows[0]);
			}
		}
	}
};

// The row's shape (DbMixin's), also what feedback answers.
(PromptsExecutionsService.actions!.feedback as { response: unknown }).response = (
	PromptsExecutionsService.mixins![0].actions as Record<string, { response: unknown }>
).get.response;

export default PromptsExecutionsService;
