// prompts module: /api/prompts, in the organization chosen in the switcher. Types come from the generated
// schema.d.ts (npm run api-types).
import { api, crud, type Schema } from "@/lib/api";

export type PromptTemplate = Schema<"PromptTemplate">;
export type PromptMessage = Schema<"PromptMessage">;
export type PromptVariable = Schema<"PromptVariable">;
export type PromptTemplateInput = {
	name?: string;
	description?: string;
	tags?: string[];
	messages?: PromptMessage[];
	variables?: PromptVariable[];
	model_settings?: Record<string, unknown>;
	note?: string;
	label?: string;
};

export const promptsApi = crud<PromptTemplate, PromptTemplateInput>("/prompts");

// --- Experiments: /api/prompts/experiments (a label's renders split between versions until a winner is called) ---
export type PromptExperiment = Schema<"PromptExperiment">;
export type PromptExperimentDetail = Schema<"PromptExperimentDetail">;
export type PromptVariant = Schema<"PromptVariant">;
export type PromptVersionSummary = Pick<Schema<"PromptVersion">, "id" | "number" | "note" | "labels" | "created_at">;
export type PromptExperimentMetric = PromptExperiment["metric"];
export interface PromptExperimentInput {
	template_id: string;
	name: string;
	label?: string;
	variants: { version: number; weight: number }[];
	metric: PromptExperimentMetric;
	min_samples?: number;
	confidence?: number;
	sticky_by?: "user" | "session";
}

export const experimentsApi = {
	entity: "prompts-experiments",
	list: (query: { template_id?: string; status?: string } = {}) =>
		api.get<PromptExperiment[]>("/prompts/experiments", query),
	get: (id: string) => api.get<PromptExperimentDetail>(`/prompts/experiments/${encodeURIComponent(id)}`),
	start: (body: PromptExperimentInput) => api.post<PromptExperimentDetail>("/prompts/experiments", body),
	stop: (id: string, promoteVariantId?: string) =>
		api.post<PromptExperimentDetail>(
			`/prompts/experiments/${encodeURIComponent(id)}/stop`,
			promoteVariantId ? { promote_variant_id: promoteVariantId } : {}
		),
	// What the start dialog offers: a template's versions and labels.
	versions: (templateId: string) =>
		api.get<PromptVersionSummary[]>(`/prompts/${encodeURIComponent(templateId)}/versions`),
	labels: (templateId: string) =>
		api.get<Schema<"PromptLabel">[]>(`/prompts/${encodeURIComponent(templateId)}/labels`)
};
