// planning's durable events (channel planning.events).
import type { E } from "../../lib/events/types";

export type PlanningEvent =
	| E<"planning.entity.created", { entityId: string; kind: string; title: string }>
	| E<"planning.task.unblocked", { entityId: string; title: string }>
	// A plan generated from a goal, with its tasks and the knowledge articles they used.
	| E<"planning.task.generated", { planId: string; taskCount: number; taskIds: string[]; articleIds: string[] }>
	| E<"planning.plan.created", { planId: string; title: string }>
	| E<"planning.plan.approved", { planId: string; revision: number; approvedBy: string | null }>
	// Published when a run of the plan ends (execution.plan.executed, republished): once per run.
	| E<"planning.plan.executed", { planId: string; runId: string; status: "success" | "failed" | "cancelled" }>;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"planning.events": PlanningEvent;
	}
}
