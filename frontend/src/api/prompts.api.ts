// prompts module: /api/prompts, in the organization chosen in the switcher. Types come from the generated
// schema.d.ts (npm run api-types).
import { api, crud, request, type Page, type Schema } from "@/lib/api";

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

// Templates, versions, labels, overrides, render and complete (the editor's pages).
export type PromptTemplateDetail = Schema<"PromptTemplateDetail">;
export type PromptVersion = Schema<"PromptVersion">;
export type PromptLabel = Schema<"PromptLabel">;
export type PromptLabelMove = Schema<"PromptLabelMove">;
export type PromptLabelMoveResult = Schema<"PromptLabelMoveResult">;
export type PromptDiff = Schema<"PromptDiff">;
export type PromptRendered = Schema<"PromptRendered">;
export type PromptCompleted = Schema<"PromptCompleted">;
export type PromptPreview = Schema<"PromptPreview">;
// A draft to preview: a version's content and sample values for its variables.
export type PreviewInput = Pick<PromptTemplateInput, "messages" | "variables" | "model_settings"> & {
	values?: Record<string, unknown>;
};
export type PromptExecution = Schema<"PromptExecution">;
export type VariableType = PromptVariable["type"];
export type VersionInput = Pick<PromptTemplateInput, "messages" | "variables" | "model_settings" | "note" | "label">;
// Which version to render: a label's or a number.
export type PromptRef = { name: string; label?: string; version?: number; variables?: Record<string, unknown> };

const one = (id: string) => `/prompts/${encodeURIComponent(id)}`;

export const promptTemplatesApi = {
	list: (query: { search?: string; tag?: string } = {}) =>
		api.get<Page<PromptTemplate>>("/prompts", { ...query, page: 1, pageSize: 100 }),
	get: (id: string) => api.get<PromptTemplateDetail>(one(id)),
	create: (body: PromptTemplateInput) => api.post<PromptTemplateDetail>("/prompts", body),
	update: (id: string, body: { description?: string; tags?: string[] }) =>
		api.patch<PromptTemplateDetail>(one(id), body),
	remove: (id: string) => api.delete<PromptTemplate>(one(id)),
	publish: (id: string, body: VersionInput) => api.post<PromptVersion>(`${one(id)}/versions`, body),
	versions: (id: string) => api.get<PromptVersion[]>(`${one(id)}/versions`),
	diff: (id: string, from: number, to: number) => api.get<PromptDiff>(`${one(id)}/diff`, { from, to }),
	labels: (id: string) => api.get<PromptLabel[]>(`${one(id)}/labels`),
	moveLabel: (id: string, label: string, body: { version: number; protected?: boolean }) =>
		request<PromptLabelMoveResult>("PUT", `${one(id)}/labels/${encodeURIComponent(label)}`, { body }),
	removeLabel: (id: string, label: string) =>
		api.delete<PromptLabel>(`${one(id)}/labels/${encodeURIComponent(label)}`),
	labelMoves: (id: string, label?: string) => api.get<PromptLabelMove[]>(`${one(id)}/label-moves`, { label }),
	rollback: (id: string, body: { label: string; version?: number }) =>
		api.post<PromptLabelMoveResult>(`${one(id)}/rollback`, body),
	override: (id: string, body: VersionInput = {}) => api.post<PromptTemplateDetail>(`${one(id)}/override`, body),
	render: (ref: PromptRef) => api.post<PromptRendered>("/prompts/render", ref),
	preview: (draft: PreviewInput) => api.post<PromptPreview>("/prompts/preview", draft),
	complete: (ref: PromptRef & { model?: string }) => api.post<PromptCompleted>("/prompts/complete", ref),
	execution: (id: string) => api.get<PromptExecution>(`/prompts/executions/${encodeURIComponent(id)}`)
};

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
