// What a request is charged against the usage module's quotas and budgets (mixins/usage-limits.mixin.ts): reserved
// before it runs at its estimate, settled to what its metering event says it used.
import type { UsageCharge } from "../../mixins/usage-limits.mixin";
import { estimateOf, Run } from "./run";
import { costOf, estimateTokens } from "./usage";

// Tokens as the rate limits estimate them, one request, and the cost of that estimate at the highest price among
// the deployments that may serve it (any one of them may end up answering). Tool calls are only counted afterwards.
export function usageChargeOf(run: Run): UsageCharge {
	const body = run.target.body;
	const tokens = estimateOf(run.kind, body);
	const prompt = run.kind === "embedding" ? tokens : estimateTokens(body.messages ?? body.input);
	const usage = { prompt, completion: Math.max(0, tokens - prompt), cached: 0 };
	let cost = 0;
	for (const d of run.cfg.models)
		if (d.kind === run.kind && run.target.chain.includes(d.name)) cost = Math.max(cost, costOf(usage, d));
	return {
		organizationId: run.org,
		userId: run.auth.userId,
		apiKeyId: run.auth.apiKeyId,
		estimate: { tokens, requests: 1, tool_calls: 0, cost }
	};
}
