// Presets: named model configurations (model or alias, temperature, max tokens, system prompt, response format)
// that other modules and clients use as a model name. A preset named like a deployment takes that model's requests
// over only with `overrides_model` (a 409 otherwise), which the UI shows on the preset.
import type { ServiceSchema } from "../../lib/schema";
import { AiConfigMixin, optionalCount } from "./config.mixin";
import { checkPreset } from "./model-references";

const AiPresetsService: ServiceSchema = {
	name: "ai-presets",
	mixins: [
		AiConfigMixin(
			"ai_presets",
			["name", "model", "temperature", "max_tokens", "system_prompt", "response_format", "overrides_model"],
			{
				name: { type: "string", min: 1, max: 200, trim: true },
				model: { type: "string", min: 1, max: 200 },
				temperature: { type: "number", min: 0, max: 2, optional: true, nullable: true, convert: true },
				max_tokens: optionalCount,
				system_prompt: { type: "string", max: 100000, optional: true, nullable: true },
				response_format: { type: "object", optional: true, nullable: true },
				overrides_model: { type: "boolean", optional: true }
			},
			"/ai/presets",
			{ entityName: "preset" },
			checkPreset
		)
	]
};

export default AiPresetsService;
