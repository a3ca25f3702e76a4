// The embeddings module's durable events (channel embedding.events).
import type { E } from "../../lib/events/types";

type Doc = { collectionId: string; documentId: string; sourceId: string };
type Job = { jobId: string; collectionId: string | null; kind: string };

export type EmbeddingEvent =
	| E<"embedding.document.created", Doc & { chunks: number }>
	| E<"embedding.document.updated", Doc & { chunks: number }>
	| E<"embedding.document.deleted", Doc>
	| E<"embedding.job.started", Job & { total: number }>
	| E<"embedding.job.progress", Job & { done: number; total: number }>
	| E<"embedding.job.completed", Job & { done: number; total: number }>
	| E<"embedding.job.failed", Job & { error: string }>;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"embedding.events": EmbeddingEvent;
	}
}
