// The ai module's events: durable ones on `ai.events` (through the outbox), and its broadcasts to every replica.
import type { E } from "../../lib/events/types";

export type AIEvent =
	| E<"ai.completion.started", { requestId: string; model: string; organizationId: string }>
	| E<"ai.completion.completed", { requestId: string; model: string; tokensUsed: number; durationMs: number }>
	| E<"ai.completion.failed", { requestId: string; model: string; error: string }>
	| E<"ai.completion.fallback", { requestId: string; fromModel: string; toModel: string; reason: string }>
	| E<"ai.usage.recorded", AIUsage>
	| E<"ai.ratelimit.exceeded", { organizationId: string; userId?: string; scope: string }>
	| E<"ai.provider.health.changed", { providerId: string; status: string }>;

// What one request used, for metering (the usage module): sent once per request that reached a model or the cache,
// whatever its outcome, so a stream cut short or cancelled is billed for what it produced. `cost` is at the
// deployment's own prices; the usage module prices it again by its own price list when it has one for the model.
export interface AIUsage {
	requestId: string;
	organizationId: string;
	userId?: string;
	apiKeyId?: string;
	service?: string; // a service principal acting without a user
	kind: "completion" | "embedding";
	requestedModel: string;
	model: string; // the model that answered
	providerId?: string;
	status: "success" | "error" | "cancelled";
	cacheHit: boolean;
	inputTokens: number; // every input token, cached ones and cache writes included
	outputTokens: number;
	cachedTokens: number;
	cacheWriteTokens: number;
	toolCalls: number;
	cost: number; // dollars
	occurredAt: string; // when the request ended (ISO 8601)
}

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"ai.events": AIEvent;
	}
	interface BroadcastEvents {
		// An organization's providers, models, routing or settings changed: every replica drops its cached set-up.
		"ai.config.changed": { organizationId: string };
		// The client of a request went away: the replica running it aborts it.
		"ai.cancel": { requestId: string };
	}
}
