// Manifest of the ai module (lib/module.ts).
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "ai",
	description: "LLM gateway: providers, models, routing, fallbacks, rate limits, cache, completion logs",
	tablePrefix: "ai_",
	publishes: ["ai.events"],
	consumes: []
});
