// Fallback chains: the models to try, in order, when every deployment of a model fails (timeout, connection
// error, 429, 5xx, or for streams a missed first-token deadline).
import type { ServiceSchema } from "../../lib/schema";
import { AiConfigMixin } from "./config.mixin";
import { checkFallbackChain } from "./model-references";

const AiFallbackChainsService: ServiceSchema = {
	name: "ai-fallback-chains",
	mixins: [
		AiConfigMixin(
			"ai_fallback_chains",
			["model", "fallbacks", "first_token_timeout_ms"],
			{
				model: { type: "string", min: 1, max: 200 },
				fallbacks: { type: "array", items: { type: "string", min: 1, max: 200 }, min: 1, max: 10 },
				first_token_timeout_ms: {
					type: "number",
					integer: true,
					min: 50,
					max: 600000,
					optional: true,
					nullable: true,
					convert: true,
					label: "First-token timeout (ms)"
				}
			},
			"/ai/fallback-chains",
			{ entityName: "fallback chain" },
			checkFallbackChain
		)
	]
};

export default AiFallbackChainsService;
