// planning-cycles: time-boxed iterations (Linear's cycles, Plane's cycles) with a start, an end after it, and the
// organization's entities in them.
import type { ServiceSchema } from "../../lib/schema";
import type { Context } from "moleculer";
import { invalid } from "../../lib/errors";
import { DbMixin, type DbService } from "../../mixins/db.mixin";

const PlanningCyclesService: ServiceSchema = {
	name: "planning-cycles",
	mixins: [
		DbMixin({
			table: "planning_cycles",
			columns: [
				"id",
				"organization_id",
				"name",
				"start_date",
				"end_date",
				"entity_ids",
				"created_at",
				"updated_at"
			],
			writable: {
				name: { type: "string", min: 1, max: 200, trim: true, label: "name" },
				start_date: { type: "date", convert: true, label: "start date" },
				end_date: { type: "date", convert: true, label: "end date" },
				entity_ids: { type: "array", items: "uuid", max: 1000, unique: true, optional: true, label: "items" }
			},
			tenant: true,
			permissions: { read: "planning:read", write: "planning:write" },
			rest: "/planning/cycles",
			entityName: "cycle",
			schemaName: "PlanningCycle",
			references: { entity_ids: { table: "planning_entities", entity: "entity" } },
			entity: { start_date: "date", end_date: "date", entity_ids: { type: "array", items: "uuid" } },
			live: true
		})
	],
	hooks: {
		before: {
			// End after start, checked against the stored dates when an update changes only one of them.
			async "create|update"(this: DbService, ctx: Context<Record<string, any>>) {
				const stored = ctx.params.id ? await this.findScoped(ctx, ctx.params.id) : {};
				const s = ctx.params.start_date ?? stored.start_date;
				const e = ctx.params.end_date ?? stored.end_date;
				if (s != null && e != null && new Date(e as string).getTime() <= new Date(s as string).getTime())
					throw invalid("end_date", "must be after start_date");
			}
		}
	}
};
export default PlanningCyclesService;
