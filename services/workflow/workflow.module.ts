// workflow: reusable workflows — versioned graphs of steps the execution engine runs, by hand or on a schedule.
import { defineModule } from "../../lib/module";
import { setting } from "../../lib/settings";

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
	// Runs are started as the workflow service (a schedule has no user): execution's startGraph takes only it.
	servicePermissions: ["execution:run"],
	container: {
		environment: {
			SERVICE_CREDENTIALS:
				"workflow-definitions:${WORKFLOW_DEFINITIONS_SERVICE_CREDENTIAL:?set WORKFLOW_DEFINITIONS_SERVICE_CREDENTIAL}"
		}
	},
	publishes: ["workflow.events"],
	consumes: [],
	settings: {
		runsPerOrganization: setting.int({
			env: "WORKFLOW_RUNS_PER_ORGANIZATION",
			default: 10,
			min: 1,
			max: 10_000,
			description:
				"workflow runs of one organization active at once (running, sleeping or awaiting approval); more wait queued"
		}),
		schedulePollMs: setting.int({
			env: "WORKFLOW_SCHEDULE_POLL_MS",
			default: 1000,
			min: 50,
			max: 60_000,
			description: "how often each replica looks for workflow schedules whose tick came"
		})
	}
});
