// Routing rules: how a model's deployments are chosen (per model, optionally per request tag).
import type { ServiceSchema } from "../../lib/schema";
import { AiConfigMixin } from "./config.mixin";
import { checkRoutingRule } from "./model-references";

const AiRoutingRulesService: ServiceSchema = {
	name: "ai-routing-rules",
	mixins: [
		AiConfigMixin(
			"ai_routing_rules",
			["model", "tag", "strategy"],
			{
				model: { type: "string", min: 1, max: 200 },
				tag: { type: "string", max: 100, optional: true, nullable: true },
				strategy: { type: "enum", values: ["priority", "weighted", "latency", "least-busy", "cost"] }
			},
			"/ai/routing-rules",
			{ entityName: "routing rule" },
			checkRoutingRule
		)
	]
};

export default AiRoutingRulesService;
