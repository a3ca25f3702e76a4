// Manifest of the usage module (lib/module.ts): metering of what AI calls use, pricing, quotas and budgets.
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "usage",
	description: "Usage metering: exactly-once usage events, aggregates, pricing, quotas, budgets and their alerts",
	tablePrefix: "usage_",
	dependsOn: ["auth"],
	permissions: {
		"usage:read": {
			description: "See the organization's usage, costs, quotas, budgets and alerts",
			role: "viewer"
		},
		"usage:manage": { description: "Set prices, quotas and budgets; re-price a past period", role: "admin" }
	},
	publishes: ["usage.events"],
	// embedding.events and mcp.events join when those modules publish them.
	consumes: [
		{ channel: "ai.events", group: "usage" },
		{ channel: "ai.events", group: "usage-limits" }
	]
});
