// Manifest of the ai module (lib/module.ts).
import { defineModule } from "../../lib/module";
import { parseHostRules } from "../../lib/egress";
import { setting } from "../../lib/settings";

export default defineModule({
	name: "ai",
	description: "LLM gateway: providers, models, routing, fallbacks, rate limits, cache, completion logs",
	tablePrefix: "ai_",
	dependsOn: ["auth", "secrets"],
	// Only its own credential: enough to act as ai, not as any other service.
	container: {
		environment: {
			SERVICE_CREDENTIALS:
				"ai:${AI_SERVICE_CREDENTIAL:?set AI_SERVICE_CREDENTIAL},ai-agent-runs:${AI_AGENT_RUNS_SERVICE_CREDENTIAL:?set AI_AGENT_RUNS_SERVICE_CREDENTIAL}"
		}
	},
	routes: "ai.routes",
	publishes: ["ai.events"],
	consumes: [],
	permissions: {
		"ai:read": {
			description: "See models, providers, routing, limits, settings and the completion log",
			role: "viewer"
		},
		"ai:write": { description: "Run completions and embeddings (playground, /v1)", role: "member" },
		"ai:manage": {
			description: "Configure providers, models, routing, presets, limits and settings",
			role: "admin"
		}
	},
	settings: {
		logBatchMs: setting.int({
			env: "AI_LOG_BATCH_MS",
			default: 200,
			min: 0,
			max: 10_000,
			description: "completion logs and their ai.events are written in one transaction per batch this often"
		}),
		agentRunsPerOrganization: setting.int({
			env: "AI_AGENT_RUNS_PER_ORGANIZATION",
			default: 10,
			min: 1,
			max: 1000,
			description: "agent runs of one organization driven at once, over all replicas (more wait their turn)"
		}),
		agentRunsPerReplica: setting.int({
			env: "AI_AGENT_RUNS_PER_REPLICA",
			default: 20,
			min: 0,
			max: 1000,
			description: "agent runs one replica drives at once (0: it drives none, only starts and follows them)"
		}),
		agentRunLeaseMs: setting.int({
			env: "AI_AGENT_RUN_LEASE_MS",
			default: 30_000,
			min: 500,
			max: 3_600_000,
			description: "an agent run whose replica sent no heartbeat for this long is resumed by another replica"
		}),
		agentRunPollMs: setting.int({
			env: "AI_AGENT_RUN_POLL_MS",
			default: 2000,
			min: 50,
			max: 600_000,
			description: "how often each replica looks for agent runs to drive (queued, or abandoned by a dead replica)"
		}),
		// Internal hosts AI providers may reach anyway (loopback, private ranges, …); public hosts always may.
		allowedPrivateHosts: setting.custom({
			env: "AI_ALLOWED_PRIVATE_HOSTS",
			description: "internal hosts AI providers may reach anyway (host names, addresses, CIDR ranges)",
			parse: raw => {
				try {
					return parseHostRules(raw);
				} catch (err) {
					const expected = `expected host names, IP addresses or CIDR ranges, e.g. "localhost:11434,10.0.0.0/8"`;
					throw new Error(`${(err as Error).message} (${expected})`);
				}
			}
		})
	}
});
