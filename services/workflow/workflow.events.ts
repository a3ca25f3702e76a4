// workflow's durable events (channel workflow.events).
import type { E } from "../../lib/events/types";

type Definition = { definitionId: string; name: string; version: number };
export type WorkflowEvent =
	| E<"workflow.definition.created", Definition>
	| E<"workflow.definition.updated", Definition>
	| E<"workflow.definition.deleted", { definitionId: string; name: string }>
	| E<
			"workflow.run.started",
			{ definitionId: string; runId: string; version: number; trigger: "manual" | "schedule" | "workflow" }
	  >;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"workflow.events": WorkflowEvent;
	}
}
