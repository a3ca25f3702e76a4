// Usage alerts: one row per quota or budget, period and threshold crossed (1: the limit itself), written by the
// usage-limits consumer with the usage.quota/budget.warning/exceeded event it sends. Read-only for clients.
import type { ServiceSchema } from "../../lib/schema";
import { DbMixin } from "../../mixins/db.mixin";

const UsageAlertsService: ServiceSchema = {
	name: "usage-alerts",
	mixins: [
		DbMixin({
			table: "usage_alerts",
			columns: [
				"id",
				"organization_id",
				"quota_id",
				"budget_id",
				"limit_id",
				"period_start",
				"threshold",
				"kind",
				"used",
				"amount",
				"created_at"
			],
			writable: {},
			tenant: true,
			permissions: { read: "usage:read", write: "usage:manage" },
			rest: "/usage/alerts",
			entityName: "alert",
			entity: {
				quota_id: "uuid|nullable",
				budget_id: "uuid|nullable",
				limit_id: "uuid",
				period_start: "date",
				threshold: "number",
				kind: { type: "enum", values: ["warning", "exceeded"] },
				used: "number",
				amount: "number"
			}
		})
	],
	settings: { sort: ["-created_at"] },
	// The consumer writes alerts straight in its transaction, past DbMixin's cache cleaning: reads are not cached.
	actions: {
		find: { cache: false },
		count: { cache: false },
		list: { cache: false },
		get: { cache: false },
		create: false,
		update: false,
		remove: false
	}
};

export default UsageAlertsService;
