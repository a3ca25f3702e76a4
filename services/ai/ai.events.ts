// The ai module's events: durable ones on `ai.events` (through the outbox), and its broadcasts to every replica.
import type { E } from "../../lib/events/types";

export type AIEvent =
	| E<"ai.completion.started", { requestId: string; model: string; organizationId: string }>
	| E<"ai.completion.completed", { requestId: string; model: string; tokensUsed: number; durationMs: number }>
	| E<"ai.completion.failed", { requestId: string; model: string; error: string }>
	| E<"ai.completion.fallback", { requestId: string; fromModel: string; toModel: string; reason: string }>
	| E<"ai.ratelimit.exceeded", { organizationId: string; userId?: string; scope: string }>
	| E<"ai.provider.health.changed", { providerId: string; status: string }>;

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
