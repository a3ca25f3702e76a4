// planning module: /api/planning/*, in the organization chosen in the switcher. Row types come from the generated
// schema.d.ts (npm run api-types): the rows DbMixin declares for each planning service.
import { api, crud, type Schema } from "@/lib/api";

export type PlanningEntity = Schema<"PlanningEntity">;
export type PlanningState = Schema<"PlanningState">;
export type PlanningRelation = Schema<"PlanningRelation">;
export type PlanningCycle = Schema<"PlanningCycle">;
export type PlanningPlan = Schema<"PlanningPlan">;
export type PlanningGenerated = Schema<"PlanningGenerated">;
export type GenerateInput = {
	goal: string;
	model?: string;
	project_id?: string;
	prompt?: { name: string; label?: string };
	options?: { max_tasks?: number; articles?: number };
};
export type PlanStep = { kind: string; title: string; config?: Record<string, unknown> };

export type EntityInput = Partial<
	Pick<PlanningEntity, "kind" | "title" | "description" | "state_id" | "parent_id" | "position">
> & { start_date?: string | null; due_date?: string | null; fields?: Record<string, unknown> };
export type RelationInput = { kind: string; source_id: string; target_id: string };
export type PlanInput = { title?: string; goal?: string; steps?: PlanStep[] };

export const entitiesApi = {
	...crud<PlanningEntity, EntityInput>("/planning/entities"),
	blockers: (id: string) =>
		api.get<{ id: string; title: string }[]>(`/planning/entities/${encodeURIComponent(id)}/blockers`)
};
export const statesApi = crud<PlanningState, Partial<PlanningState>>("/planning/states");
export const relationsApi = crud<PlanningRelation, RelationInput>("/planning/relations");
export const cyclesApi = crud<PlanningCycle, Partial<PlanningCycle>>("/planning/cycles");
export const plansApi = {
	...crud<PlanningPlan, PlanInput>("/planning/plans"),
	approve: (id: string, revision: number) =>
		api.post<PlanningPlan>(`/planning/plans/${encodeURIComponent(id)}/approve`, { revision }),
	runnable: (id: string) =>
		api.get<{ runnable: boolean; reason: string | null }>(`/planning/plans/${encodeURIComponent(id)}/runnable`),
	generate: (body: GenerateInput) => api.post<PlanningGenerated>("/planning/plans/generate", body)
};

export const ENTITY_KINDS = [
	"project",
	"task",
	"roadmap",
	"issue",
	"release",
	"architecture",
	"dependency",
	"incident",
	"environment",
	"debt",
	"review",
	"module"
] as const;
export const STEP_KINDS = [
	"ai_completion",
	"agent_run",
	"mcp_tool_call",
	"http_webhook",
	"manual_approval",
	"sub_workflow"
];
export const STATE_GROUPS = ["backlog", "unstarted", "started", "completed", "cancelled"] as const;
