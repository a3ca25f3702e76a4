// AI deployments: a model name clients use, deployed on a provider as its own model id, with capabilities and prices
// (per million tokens). Several rows with one name are deployments the router chooses among.
import type { ServiceSchema } from "../../lib/schema";
import { AiConfigMixin } from "./config.mixin";

const AiDeploymentsService: ServiceSchema = {
	name: "ai-deployments",
	mixins: [
		AiConfigMixin(
			"ai_deployments",
			[
				"provider_id",
				"name",
				"provider_model",
				"kind",
				"context_window",
				"capabilities",
				"input_price",
				"output_price",
				"cached_input_price",
				"cache_write_price",
				"priority",
				"weight",
				"tags",
				"enabled"
			],
			{
				provider_id: { type: "uuid", label: "Provider" },
				name: { type: "string", min: 1, max: 200, trim: true, label: "Model name" },
				provider_model: { type: "string", min: 1, max: 200, label: "Provider's model" },
				kind: { type: "enum", values: ["chat", "embedding"], optional: true },
				context_window: { type: "number", integer: true, positive: true, optional: true, convert: true },
				capabilities: {
					type: "object",
					props: { tools: "boolean|optional", json: "boolean|optional", vision: "boolean|optional" },
					optional: true
				},
				input_price: { type: "number", min: 0, optional: true, convert: true },
				output_price: { type: "number", min: 0, optional: true, convert: true },
				cached_input_price: { type: "number", min: 0, optional: true, convert: true },
				// Unset: cache writes cost what input does.
				cache_write_price: { type: "number", min: 0, optional: true, nullable: true, convert: true },
				priority: { type: "number", integer: true, optional: true, convert: true },
				weight: { type: "number", integer: true, min: 0, optional: true, convert: true },
				tags: { type: "array", items: "string", optional: true },
				enabled: { type: "boolean", optional: true }
			},
			"/ai/deployments",
			// A deployment runs on one of the organization's own providers, never on another's.
			{ entityName: "deployment", references: { provider_id: { table: "ai_providers", entity: "provider" } } }
		)
	]
};

export default AiDeploymentsService;
