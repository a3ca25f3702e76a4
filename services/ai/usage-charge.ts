// What a request is charged against the usage module's quotas and budgets (mixins/usage-limits.mixin.ts): reserved
// before it runs at its estimate, settled to what its metering event says it used.
import type { UsageCharge } from "../../mixins/usage-limits.mixin";
import { outputCapOf, Run } from "./run";
import { costOf, estimateTokens } from "./usage";

// Tokens as the rate limits estimate them, one request, and the cost of that estimate at the highest price among
// the deployments that may serve it (any one of them may end up answering). Tool calls are only counted afterwards.
// The estimate is computed only when a limit applies (it serializes the prompt), and the prompt once.
export function usageChargeOf(run: Run): UsageCharge {
	const estimate = () => {
		const body = run.target.body;
		const prompt = estimateTokens(run.kind === "embedding" ? body.input : (body.messages ?? body.input));
		const tokens = run.kind === "embedding" ? prompt : prompt + outputCapOf(body);
		const usage = { prompt, completion: Math.max(0, tokens - prompt), cached: 0 };
		let cost = 0;
		for (const d of run.cfg.models)
			if (d.kind === run.kind && run.target.chain.includes(d.name)) cost = Math.max(cost, costOf(usage, d));
		return { tokens, requests: 1, tool_calls: 0, cost };
	};
	return { organizationId: run.org, userId: run.auth.userId, apiKeyId: run.auth.apiKeyId, estimate };
}
