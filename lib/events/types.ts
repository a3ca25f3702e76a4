// The platform's durable events, one union per channel, as the seed lists them. Every event carries an id
// (consumers de-duplicate on it) and the time it happened; `organizationId` routes it to the right tenant.
export interface EventMeta {
	id: string;
	time: string;
	organizationId?: string;
}

// One event type: `E<"ai.completion.started", { requestId: string }>`. Modules build their unions with it.
export type E<T extends string, D = {}> = { type: T } & D & EventMeta;

export type MCPEvent =
	| E<"mcp.tool.execution.started", { serverId: string; toolName: string; executionId: string }>
	| E<"mcp.tool.execution.completed", { executionId: string; durationMs: number }>
	| E<"mcp.tool.execution.failed", { executionId: string; error: string }>
	| E<"mcp.server.health.changed", { serverId: string; status: "healthy" | "degraded" | "unhealthy" }>
	| E<"mcp.server.rate_limit.exceeded", { serverId: string; organizationId: string }>
	| E<"mcp.server.registered", { serverId: string }>
	| E<"mcp.server.deregistered", { serverId: string }>;

export type KnowledgeEvent =
	| E<"knowledge.article.created", { articleId: string; projectId: string }>
	| E<"knowledge.article.updated", { articleId: string }>
	| E<"knowledge.article.deleted", { articleId: string }>
	| E<"knowledge.search.indexed", { documentCount: number }>;

export type PlanningEvent =
	| E<"planning.plan.created", { planId: string; projectId: string }>
	| E<"planning.plan.approved", { planId: string }>
	| E<"planning.plan.executed", { planId: string; status: "success" | "failed" }>
	| E<"planning.task.generated", { planId: string; taskCount: number }>;

export type AIEvent =
	| E<"ai.completion.started", { requestId: string; model: string; organizationId: string }>
	| E<"ai.completion.completed", { requestId: string; model: string; tokensUsed: number; durationMs: number }>
	| E<"ai.completion.failed", { requestId: string; model: string; error: string }>
	| E<"ai.completion.fallback", { requestId: string; fromModel: string; toModel: string; reason: string }>
	| E<"ai.ratelimit.exceeded", { organizationId: string; userId?: string; scope: string }>
	| E<"ai.provider.health.changed", { providerId: string; status: string }>;

export type EmbeddingEvent =
	| E<"embedding.document.created", { documentId: string; collectionId: string }>
	| E<"embedding.document.updated", { documentId: string; chunkCount: number }>
	| E<"embedding.document.deleted", { documentId: string; sourceId: string }>
	| E<"embedding.job.started", { jobId: string; collectionId: string }>
	| E<"embedding.job.progress", { jobId: string; processed: number; total: number }>
	| E<"embedding.job.completed", { jobId: string; documentsProcessed: number }>
	| E<"embedding.job.failed", { jobId: string; error: string }>;

export type PromptEvent =
	| E<"prompt.template.created", { templateId: string; name: string }>
	| E<"prompt.version.published", { templateId: string; version: number }>
	| E<"prompt.override.created", { templateId: string; organizationId: string }>
	| E<"prompt.experiment.started", { experimentId: string; templateId: string }>
	| E<"prompt.experiment.completed", { experimentId: string; winner: string }>
	| E<"prompt.rendered", { templateId: string; versionId: string; variantId?: string }>;

export type UsageEvent =
	| E<"usage.quota.warning", { organizationId: string; quotaId: string; percentage: number }>
	| E<"usage.quota.exceeded", { organizationId: string; quotaId: string }>
	| E<"usage.budget.warning", { organizationId: string; budgetId: string; percentage: number }>
	| E<"usage.budget.exceeded", { organizationId: string; budgetId: string }>;

// Channel name -> the events it carries (the seed's RabbitMQ exchanges). A module adds its own channel from its
// services/<module>/<module>.events.ts: `declare module "../../lib/events/types" { interface ChannelEvents {...} }`.
export interface ChannelEvents {
	"mcp.events": MCPEvent;
	"knowledge.events": KnowledgeEvent;
	"planning.events": PlanningEvent;
	"ai.events": AIEvent;
	"embedding.events": EmbeddingEvent;
	"prompt.events": PromptEvent;
	"usage.events": UsageEvent;
}

export type ChannelName = keyof ChannelEvents;
export type PlatformEvent = ChannelEvents[ChannelName];
export type EventType = PlatformEvent["type"];
// The fields a publisher supplies for one event type (id and time are added on publish).
export type EventData<T extends EventType> = Omit<Extract<PlatformEvent, { type: T }>, "type" | "id" | "time"> & {
	organizationId?: string;
};

export const CHANNELS: ChannelName[] = [
	"mcp.events",
	"knowledge.events",
	"planning.events",
	"ai.events",
	"embedding.events",
	"prompt.events",
	"usage.events"
];

// "embedding.job.failed" -> "embedding.events"
export function channelOf(type: string): string {
	return `${type.split(".")[0]}.events`;
}
