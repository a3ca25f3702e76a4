// prompts module: /api/prompts, in the organization chosen in the switcher. Types come from the generated
// schema.d.ts (npm run api-types).
import { crud, type Schema } from "@/lib/api";

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
