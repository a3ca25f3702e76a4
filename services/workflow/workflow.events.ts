// workflow's durable events (channel workflow.events).
import type { E } from "../../lib/events/types";

export type WorkflowEvent = E<"workflow.item.created", { itemId: string; name: string }>;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"workflow.events": WorkflowEvent;
	}
}
