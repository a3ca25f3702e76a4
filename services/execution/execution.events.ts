// execution's durable events (channel execution.events); the plan's outcome goes on planning.events
// (planning.plan.executed, typed in services/planning/planning.events.ts).
import type { E } from "../../lib/events/types";

type RunData = { jobId: string; kind: string; planId: string };
export type ExecutionEvent =
	| E<"execution.run.started", RunData & { total: number }>
	| E<"execution.run.progress", RunData & { done: number; total: number }>
	| E<"execution.run.completed", RunData & { done: number; total: number }>
	| E<"execution.run.failed", RunData & { error: string }>
	| E<"execution.step.waiting", { runId: string; planId: string; position: number; title: string }>;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"execution.events": ExecutionEvent;
	}
}
