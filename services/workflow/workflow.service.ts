// workflow: the organization's items. CRUD, tenancy and REST come from DbMixin; creating one publishes
// workflow.item.created through the outbox, in the insert's transaction.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import type { PgAdapter } from "../../lib/db/pg-adapter";
import type { Queryable } from "../../lib/db";
import { fromDbError } from "../../lib/errors";
import { DbMixin } from "../../mixins/db.mixin";
import { EventsMixin } from "../../mixins/events.mixin";
import "./workflow.events";

type Item = { id: string; name: string; description: string };
interface Self {
	adapter: PgAdapter;
	tenantId(ctx: Context): string;
	withEvents<T>(
		fn: (tx: Queryable, publish: (type: "workflow.item.created", data: object) => unknown) => Promise<T>
	): Promise<T>;
	clearCache(): Promise<void>;
	transformDocuments(ctx: Context, params: object, row: Item): Promise<Item>;
}

const WorkflowService: ServiceSchema = {
	name: "workflow",
	mixins: [
		DbMixin({
			table: "workflow_items",
			columns: ["id", "organization_id", "name", "description", "created_at", "updated_at"],
			writable: {
				name: { type: "string", min: 1, max: 200, trim: true },
				description: { type: "string", max: 2000, optional: true }
			},
			tenant: true,
			searchFields: ["name", "description"],
			permissions: { read: "workflow:read", write: "workflow:write" },
			rest: "/workflow",
			entityName: "workflow item"
		}),
		EventsMixin
	],
	actions: {
		create: {
			async handler(this: Self, ctx: Context<{ name: string; description?: string }>) {
				const organizationId = this.tenantId(ctx);
				const row = await this.withEvents(async (tx, publish) => {
					const item: Item = await this.adapter
						.withTx(tx)
						.insert({ ...ctx.params, organization_id: organizationId });
					publish("workflow.item.created", { organizationId, itemId: item.id, name: item.name });
					return item;
				}).catch((err: unknown) => {
					throw fromDbError(err, "workflow item");
				});
				await this.clearCache();
				return this.transformDocuments(ctx, {}, row);
			}
		}
	}
};
export default WorkflowService;
