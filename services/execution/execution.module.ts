// execution: the durable engine that runs approved plans and workflow graphs step by step, retries, waits for approvals
// and rolls back.
import { defineModule } from "../../lib/module";
import { parseHostRules } from "../../lib/egress";
import { setting } from "../../lib/settings";

export default defineModule({
	name: "execution",
	description: "Runs of approved plans and workflows: durable step execution, approvals and rollback",
	tablePrefix: "execution_",
	dependsOn: ["auth", "planning"],
	permissions: {
		"execution:read": { description: "See plan runs, their steps and logs", role: "viewer" },
		"execution:run": { description: "Run approved plans, cancel and roll back runs", role: "member" },
		"execution:approve": { description: "Approve a step that waits for a person", role: "admin" }
	},
	// Steps run without a user (a replica may resume them): AI, prompt and MCP steps act as the service.
	// A sub-workflow step starts a workflow run (workflow-definitions.startChild takes only this service).
	servicePermissions: ["prompts:write", "ai:write", "mcp:write", "workflow:run"],
	container: {
		environment: {
			SERVICE_CREDENTIALS:
				"execution-runs:${EXECUTION_RUNS_SERVICE_CREDENTIAL:?set EXECUTION_RUNS_SERVICE_CREDENTIAL}"
		}
	},
	publishes: ["execution.events"],
	consumes: [],
	settings: {
		runsPerOrganization: setting.int({
			env: "EXECUTION_RUNS_PER_ORGANIZATION",
			default: 4,
			min: 1,
			max: 1000,
			description: "plan runs of one organization running at once, over all replicas"
		}),
		runsPerReplica: setting.int({
			env: "EXECUTION_RUNS_PER_REPLICA",
			default: 16,
			min: 1,
			max: 1000,
			description: "plan runs one replica drives at once"
		}),
		leaseMs: setting.int({
			env: "EXECUTION_LEASE_MS",
			default: 15_000,
			min: 300,
			max: 3_600_000,
			description:
				"how long a run stays claimed by a replica without a heartbeat (a dead replica's runs resume after it)"
		}),
		pollMs: setting.int({
			env: "EXECUTION_POLL_MS",
			default: 1000,
			min: 50,
			max: 60_000,
			description: "how often each replica looks for queued or abandoned runs"
		}),
		stepTimeoutMs: setting.int({
			env: "EXECUTION_STEP_TIMEOUT_MS",
			default: 300_000,
			min: 100,
			max: 86_400_000,
			description: "a step's time limit when its config sets no timeout_ms"
		}),
		retryBaseMs: setting.int({
			env: "EXECUTION_RETRY_BASE_MS",
			default: 1000,
			min: 0,
			max: 600_000,
			description: "first back-off before a failed step is tried again (doubled each time, with jitter)"
		}),
		allowedPrivateHosts: setting.custom({
			env: "EXECUTION_ALLOWED_PRIVATE_HOSTS",
			description: "internal hosts webhook steps may reach anyway (host names, addresses, CIDR ranges)",
			parse: raw => {
				try {
					return parseHostRules(raw);
				} catch (err) {
					throw new Error(`${(err as Error).message} (expected host names, IP addresses or CIDR ranges)`);
				}
			}
		})
	}
});
