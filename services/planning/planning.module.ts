// planning: what the module owns, its permissions and the events it publishes.
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "planning",
	description: "The organization's planning items",
	tablePrefix: "planning_",
	permissions: {
		"planning:read": { description: "See the organization's planning items", role: "viewer" },
		"planning:write": { description: "Create, change and remove planning items", role: "member" },
		"planning:manage": { description: "Manage the planning module", role: "admin" }
	},
	publishes: ["planning.events"],
	// A plan run's outcome from the execution module, published again as planning.plan.executed.
	consumes: [{ channel: "execution.events", group: "planning" }]
});
