// Manifest of the prompts module (lib/module.ts).
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "prompts",
	description: "Prompt management: versioned chat templates, labels, organization overrides, render and complete",
	tablePrefix: "prompts_",
	dependsOn: ["auth"],
	permissions: {
		"prompts:read": { description: "See prompt templates, versions and labels; render them", role: "viewer" },
		"prompts:write": {
			description:
				"Create templates, publish versions, move unprotected labels, override shared templates, run completions",
			role: "member"
		},
		"prompts:manage": {
			description: "Move protected labels (production), protect labels, remove templates",
			role: "admin"
		}
	},
	// A completion for a job's principal (a service acting for an organization) reaches the AI as service prompts,
	// for that organization: its own credential (only it), and ai:write.
	servicePermissions: ["ai:write"],
	container: {
		environment: { SERVICE_CREDENTIALS: "prompts:${PROMPTS_SERVICE_CREDENTIAL:?set PROMPTS_SERVICE_CREDENTIAL}" }
	},
	publishes: ["prompts.events"],
	consumes: []
});
