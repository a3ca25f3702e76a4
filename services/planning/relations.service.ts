// planning-relations: blocks, relates and duplicates between two entities of one organization (parent/child is the
// entity's parent_id). Removing a `blocks` relation may release its target: planning.task.unblocked.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import type { Queryable } from "../../lib/db";
import { duplicate, fromDbError, invalid } from "../../lib/errors";
import { checkTenantReferences, DbMixin, type DbService } from "../../mixins/db.mixin";
import { EventsMixin, type Publish } from "../../mixins/events.mixin";
import { getDb } from "../../lib/db";
import { RELATION_KINDS } from "./planning.kinds";
import { announceUnblocked, lockEntity } from "./planning.gating";
import "./planning.events";

interface Self extends DbService {
	withEvents<T>(fn: (tx: Queryable, publish: Publish) => Promise<T>): Promise<T>;
}
const REFERENCES = {
	source_id: { table: "planning_entities", entity: "entity" },
	target_id: { table: "planning_entities", entity: "entity" }
};

const LABELS = { kind: "kind", source_id: "source", target_id: "target" };

const PlanningRelationsService: ServiceSchema = {
	name: "planning-relations",
	mixins: [
		DbMixin({
			table: "planning_relations",
			columns: ["id", "organization_id", "kind", "source_id", "target_id", "created_at", "updated_at"],
			writable: {
				kind: { type: "enum", values: [...RELATION_KINDS], label: "kind" },
				source_id: { type: "uuid", label: "source" },
				target_id: { type: "uuid", label: "target" }
			},
			tenant: true,
			permissions: { read: "planning:read", write: "planning:write" },
			rest: "/planning/relations",
			entityName: "relation",
			schemaName: "PlanningRelation",
			references: REFERENCES
		}),
		EventsMixin
	],
	actions: {
		// Relations are created and removed, never re-pointed.
		update: false,
		create: {
			async handler(this: Self, ctx: Context<{ kind: string; source_id: string; target_id: string }>) {
				const org = this.tenantId(ctx)!;
				if (ctx.params.source_id === ctx.params.target_id)
					throw invalid("target_id", "an entity cannot be related to itself");
				await checkTenantReferences(await getDb(), org, REFERENCES, ctx.params);
				if (ctx.params.kind !== "blocks") return (this as any)._create(ctx, ctx.params);
				// Under the target's row lock, as a move into a started state checks its blockers (planning.gating.ts).
				const row = await this.transaction(async tx => {
					await lockEntity(tx, ctx.params.target_id);
					return tx.adapter.insert({ ...ctx.params, organization_id: org });
				}).catch((e: any) => {
					throw e?.code === "23505"
						? duplicate(e, "relation", LABELS, ctx.params)
						: fromDbError(e, "relation");
				});
				const json = await this.transformDocuments(ctx, {}, row);
				await this.entityChanged("created", json, ctx, row);
				return json;
			}
		},
		remove: {
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const org = this.tenantId(ctx)!;
				const doc = await this.findScoped(ctx, ctx.params.id);
				await this.withEvents(async (tx, publish) => {
					await tx.query("DELETE FROM planning_relations WHERE id = $1 AND organization_id = $2", [
						doc.id,
						org
					]);
					if (doc.kind === "blocks") await announceUnblocked(tx, publish, org, [doc.target_id as string]);
				});
				const json = await this.transformDocuments(ctx, {}, doc);
				await this.entityChanged("removed", json, ctx, doc);
				return json;
			}
		}
	}
};
export default PlanningRelationsService;
