// Usage quotas: at most so many tokens, requests or tool calls per UTC day or month, for the organization, a team,
// a member or an API key. Enforced by the ai before each call (mixins/usage-limits.mixin.ts).
import type { ServiceSchema } from "../../lib/schema";
import { LIMIT_COLUMNS, limitWritable, UsageLimitMixin } from "./limit.mixin";

const UsageQuotasService: ServiceSchema = {
	name: "usage-quotas",
	mixins: [
		UsageLimitMixin(
			"usage_quotas",
			["metric", ...LIMIT_COLUMNS],
			{
				...limitWritable,
				metric: { type: "enum", values: ["tokens", "requests", "tool_calls"], label: "Metric" },
				amount: {
					type: "number",
					integer: true,
					positive: true,
					max: Number.MAX_SAFE_INTEGER,
					convert: true,
					label: "Limit"
				}
			},
			"/usage/quotas",
			"quota",
			{ thresholds: { type: "array", items: "number" } }
		)
	]
};

export default UsageQuotasService;
