// ai.usage.recorded events as the ai module sends them, for the usage module's tests and bench.
import crypto from "crypto";
import type { AIUsage } from "../../services/ai/ai.events";

export type UsageRecorded = AIUsage & { type: "ai.usage.recorded"; id: string; time: string };

export function usageEvent(organizationId: string, over: Partial<AIUsage> = {}): UsageRecorded {
	const occurredAt = over.occurredAt ?? new Date().toISOString();
	return {
		type: "ai.usage.recorded",
		id: crypto.randomUUID(),
		time: occurredAt,
		requestId: crypto.randomUUID(),
		organizationId,
		kind: "completion",
		requestedModel: "m1",
		model: "m1",
		status: "success",
		cacheHit: false,
		inputTokens: 100,
		outputTokens: 50,
		cachedTokens: 0,
		cacheWriteTokens: 0,
		toolCalls: 0,
		cost: 0.001,
		occurredAt,
		...over
	};
}

// Totals a set of events should add up to (each event once), in the aggregates' measures.
export function totalsOf(events: AIUsage[]) {
	const t = { input_tokens: 0, output_tokens: 0, cached_tokens: 0, requests: 0, tool_calls: 0, embeddings: 0 };
	for (const e of events) {
		t.input_tokens += e.inputTokens;
		t.output_tokens += e.outputTokens;
		t.cached_tokens += e.cachedTokens;
		t.requests += 1;
		t.tool_calls += e.toolCalls;
		if (e.kind === "embedding") t.embeddings += 1;
	}
	return t;
}
