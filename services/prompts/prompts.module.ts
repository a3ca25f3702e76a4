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
	publishes: ["prompts.events"],
	consumes: []
});
