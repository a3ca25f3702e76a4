// workflow: reusable workflows — versioned DAGs of steps the execution engine runs, by hand or on a schedule.
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "workflow",
	description: "Reusable workflows: versioned graphs of steps run by the execution engine, by hand or on a schedule",
	tablePrefix: "workflow_",
	dependsOn: ["auth", "execution"],
	permissions: {
		"workflow:read": { description: "See the organization's workflows, their versions and runs", role: "viewer" },
		"workflow:write": { description: "Create, change and remove workflows", role: "member" },
		"workflow:run": { description: "Start workflow runs", role: "member" }
	},
	publishes: ["workflow.events"],
	consumes: []
});
