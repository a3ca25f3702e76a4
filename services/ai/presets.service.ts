// Presets: named model configurations (model or alias, temperature, max tokens, system prompt, response format)
// that other modules and clients use as a model name.
import type { ServiceSchema } from "../../lib/schema";
import { AiConfigMixin, optionalCount } from "./config.mixin";

const AiPresetsService: ServiceSchema = {
	name: "ai-presets",
	mixins: [
		AiConfigMixin(
			"ai_presets",
			["name", "model", "temperature", "max_tokens", "system_prompt", "response_format"],
			{
				name: { type: "string", min: 1, max: 200, trim: true },
				model: { type: "string", min: 1, max: 200 },
				temperature: { type: "number", min: 0, max: 2, optional: true, nullable: true, convert: true },
				max_tokens: optionalCount,
				system_prompt: { type: "string", max: 100000, optional: true, nullable: true },
				response_format: { type: "object", optional: true, nullable: true }
			},
			"/ai/presets",
			{ entityName: "preset" }
		)
	]
};

export default AiPresetsService;
