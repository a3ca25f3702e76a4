// Usage budgets: at most so many dollars of AI calls per UTC day or month, for the organization, a team, a member or
// an API key. Enforced by the ai before each call (mixins/usage-limits.mixin.ts) at the highest price it may pay.
import type { ServiceSchema } from "../../lib/schema";
import { LIMIT_COLUMNS, limitWritable, UsageLimitMixin } from "./limit.mixin";

const UsageBudgetsService: ServiceSchema = {
	name: "usage-budgets",
	mixins: [
		UsageLimitMixin(
			"usage_budgets",
			LIMIT_COLUMNS,
			{
				...limitWritable,
				// Dollars.
				amount: { type: "number", positive: true, max: 1e12, convert: true, label: "Budget (USD)" }
			},
			"/usage/budgets",
			"budget",
			{ thresholds: { type: "array", items: "number" }, amount: "number" }
		)
	]
};

export default UsageBudgetsService;
