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
	| E<"embedding.job.failed", Job & { error: string }>
	// What the built-in (local) embedder embedded in one committed write, for metering (the usage module): the model's
	// name and id, the texts (chunks) embedded and their tokens; never any text. Embeddings through an AI deployment
	// are not here: ai.embed meters them on ai.events.
	| E<
			"embedding.usage.recorded",
			{ organizationId: string; modelId: string; model: string; texts: number; tokens: number }
	  >;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"embedding.events": EmbeddingEvent;
	}
}
