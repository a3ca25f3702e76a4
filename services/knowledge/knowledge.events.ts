// The knowledge module's durable events (channel knowledge.events). They carry references, never an article's text:
// the indexer reads the article's current state, so events arriving twice or out of order index the same thing.
import type { E } from "../../lib/events/types";

type ArticleRef = {
	articleId: string;
	categoryId: string;
	title: string;
	revision: number;
	status: "draft" | "published";
};

export type KnowledgeEvent =
	| E<"knowledge.article.created", ArticleRef>
	| E<"knowledge.article.updated", ArticleRef>
	| E<"knowledge.article.deleted", { articleId: string; categoryId: string; title: string }>
	| E<"knowledge.search.indexed", { articleId: string; revision: number | null; indexed: boolean }>;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"knowledge.events": KnowledgeEvent;
	}
}
