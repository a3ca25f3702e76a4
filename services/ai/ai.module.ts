// Manifest of the ai module (lib/module.ts).
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "ai",
	description: "LLM gateway: providers, models, routing, fallbacks, rate limits, cache, completion logs",
	tablePrefix: "ai_",
	dependsOn: ["auth", "secrets"],
	routes: "ai.routes",
	publishes: ["ai.events"],
	consumes: [],
	permissions: {
		"ai:read": { description: "See models, providers, routing, limits, settings and the completion log", role: "viewer" },
		"ai:write": { description: "Run completions and embeddings (playground, /v1)", role: "member" },
		"ai:manage": { description: "Configure providers, models, routing, presets, limits and settings", role: "admin" }
	}
});
