// Rate limits: requests and tokens per minute for the organization, each user, each API key, or one model.
import type { ServiceSchema } from "../../lib/schema";
import { AiConfigMixin, optionalCount } from "./config.mixin";
import { checkRateLimit } from "./model-references";

const AiRateLimitsService: ServiceSchema = {
	name: "ai-rate-limits",
	mixins: [
		AiConfigMixin(
			"ai_rate_limits",
			["scope", "model", "requests_per_minute", "tokens_per_minute"],
			{
				scope: { type: "enum", values: ["organization", "user", "api_key", "model"], label: "Applies to" },
				model: { type: "string", max: 200, optional: true, nullable: true },
				requests_per_minute: optionalCount,
				tokens_per_minute: optionalCount
			},
			"/ai/rate-limits",
			{ entityName: "rate limit" },
			checkRateLimit
		)
	]
};

export default AiRateLimitsService;
