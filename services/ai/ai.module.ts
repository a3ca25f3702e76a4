// Manifest of the ai module (lib/module.ts).
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "ai",
	description: "LLM gateway: providers, models, routing, fallbacks, rate limits, cache, completion logs",
	tablePrefix: "ai_",
	dependsOn: ["auth", "secrets"],
	publishes: ["ai.events"],
	consumes: []
});
