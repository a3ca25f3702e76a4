// execution's durable events (channel execution.events). A run's outcome, `execution.plan.executed`, is published
// once per run; the planning module turns it into its own planning.plan.executed.
import type { E } from "../../lib/events/types";

// planId or workflowId: what the run runs (the other is null).
type RunData = { jobId: string; kind: string; planId: string | null; workflowId: string | null };
export type ExecutionEvent =
	| E<"execution.run.started", RunData & { total: number }>
	| E<"execution.run.progress", RunData & { done: number; total: number }>
	| E<"execution.run.completed", RunData & { done: number; total: number }>
	| E<"execution.run.failed", RunData & { error: string }>
	| E<"execution.step.waiting", { runId: string; planId: string; position: number; title: string }>
	| E<"execution.plan.executed", { planId: string; runId: string; status: "success" | "failed" }>;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"execution.events": ExecutionEvent;
	}
}
