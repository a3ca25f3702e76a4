// workflow module: /api/workflow/definitions — versioned DAG definitions, their runs (execution runs whose steps
// carry the graph's node ids), in the organization chosen in the switcher. Run detail, approve, cancel and rollback
// are execution's (execution.api.ts).
import { api, type Answer, type Schema } from "@/lib/api";
import type { ExecutionRun } from "./execution.api";

export const NODE_KINDS = [
	"http_webhook",
	"ai_completion",
	"agent_run",
	"mcp_tool_call",
	"manual_approval",
	"condition",
	"wait",
	"sub_workflow"
] as const;
export type NodeKind = (typeof NODE_KINDS)[number];

export const INPUT_TYPES = ["string", "number", "boolean", "object"] as const;
export interface WorkflowInput {
	type: (typeof INPUT_TYPES)[number];
	required?: boolean;
	default?: unknown;
	description?: string;
}
export interface WorkflowNode {
	id: string;
	kind: NodeKind;
	title: string;
	config: Record<string, unknown>;
	position?: { x: number; y: number };
}
export interface WorkflowEdge {
	from: string;
	to: string;
	when?: boolean;
}
export interface WorkflowGraph {
	inputs?: Record<string, WorkflowInput>;
	nodes: WorkflowNode[];
	edges: WorkflowEdge[];
}
export interface WorkflowSchedule {
	cron: string;
	timezone?: string;
	inputs?: Record<string, unknown>;
}

// The generated shapes, with the graph and the schedule typed as above (the schema leaves the graph open).
export type WorkflowDefinition = Omit<Schema<"WorkflowDefinition">, "schedule"> & { schedule: WorkflowSchedule | null };
// A row of the list: the definition with its newest run (null: never run).
export type WorkflowListItem = Omit<Schema<"WorkflowListItem">, "schedule" | "lastRun"> & {
	schedule: WorkflowSchedule | null;
	lastRun: ExecutionRun | null;
};
export type WorkflowDefinitionDetail = Omit<Answer<"workflow-definitions.get">, "graph" | "schedule"> & {
	graph: WorkflowGraph;
	schedule: WorkflowSchedule | null;
};
export type WorkflowVersion = WorkflowDefinitionDetail["versions"][number];
export interface WorkflowInputBody {
	name?: string;
	description?: string;
	graph?: WorkflowGraph;
	schedule?: WorkflowSchedule | null;
	concurrency?: { limit: number } | null;
	enabled?: boolean;
}
// A workflow's run is an execution run carrying workflowId, workflowVersion and trigger.
export type WorkflowRun = ExecutionRun;

const path = (id: string, rest = "") => `/workflow/definitions/${encodeURIComponent(id)}${rest}`;

export const workflowApi = {
	list: () => api.get<WorkflowListItem[]>("/workflow/definitions"),
	get: (id: string) => api.get<WorkflowDefinitionDetail>(path(id)),
	create: (body: WorkflowInputBody) => api.post<WorkflowDefinition>("/workflow/definitions", body),
	update: (id: string, body: WorkflowInputBody) => api.put<WorkflowDefinition>(path(id), body),
	remove: (id: string) => api.delete<unknown>(path(id)),
	version: (id: string, version: number) =>
		api.get<{ version: number; graph: WorkflowGraph; created_at: string }>(path(id, `/versions/${version}`)),
	runs: (id: string, limit?: number) => api.get<WorkflowRun[]>(path(id, "/runs"), { limit }),
	run: (id: string, body: { inputs?: Record<string, unknown>; version?: number }) =>
		api.post<WorkflowRun>(path(id, "/runs"), body)
};
