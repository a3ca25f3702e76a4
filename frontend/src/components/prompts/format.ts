// Small helpers shared by the prompts module's components: drafts of a version, sample values per variable type.
import type { PromptMessage, PromptVariable, PromptVersion, VariableType } from "@/api/prompts.api";

export const ROLES: PromptMessage["role"][] = ["system", "user", "assistant"];
export const VARIABLE_TYPES: VariableType[] = ["string", "number", "boolean", "enum", "list", "object"];
export const TEMPLATE_NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;
export const LABEL_NAME = /^[a-z][a-z0-9_-]{0,49}$/;

// What the editor changes before publishing: a new version's content.
export interface Draft {
	messages: PromptMessage[];
	variables: PromptVariable[];
	model_settings: Record<string, unknown>;
}

export const emptyDraft = (): Draft => ({
	messages: [{ role: "system", content: "" }],
	variables: [],
	model_settings: {}
});

// A variable is required unless it says otherwise or has a default (as the server reads a declaration).
export const isRequired = (v: PromptVariable) => v.required ?? v.default === undefined;

export const draftOf = (v: PromptVersion): Draft =>
	JSON.parse(
		JSON.stringify({
			messages: v.messages,
			variables: v.variables.map(d => ({ ...d, required: isRequired(d) })),
			model_settings: v.model_settings
		})
	);

// The draft as the API takes it: empty optional keys left out, model settings without blanks.
export function cleanDraft(d: Draft): Draft {
	const settings = Object.fromEntries(
		Object.entries(d.model_settings).filter(([, v]) => v !== "" && v !== null && v !== undefined)
	);
	const variables = d.variables.map(v => {
		// Always said: left out, a variable without a default would count as required.
		const out: PromptVariable = { name: v.name.trim(), type: v.type, required: !!v.required };
		if (v.default !== undefined && v.default !== "") out.default = v.default;
		if (v.maxLength && (v.type === "string" || v.type === "list")) out.maxLength = v.maxLength;
		if (v.type === "enum") out.values = v.values ?? [];
		if (v.description) out.description = v.description;
		return out;
	});
	return { messages: d.messages, variables, model_settings: settings };
}

export const sameDraft = (a: Draft, b: Draft) => JSON.stringify(cleanDraft(a)) === JSON.stringify(cleanDraft(b));

// A sample value as its input holds it: text for list and object (JSON), the value itself otherwise.
export type SampleValue = string | number | boolean | undefined;

export function sampleOf(v: PromptVariable): SampleValue {
	const d = v.default;
	if (v.type === "list" || v.type === "object")
		return d === undefined ? (v.type === "list" ? "[]" : "{}") : JSON.stringify(d);
	if (v.type === "boolean") return d === true;
	if (v.type === "number") return typeof d === "number" ? d : undefined;
	return typeof d === "string" ? d : v.type === "enum" ? v.values?.[0] : "";
}

// The sample values as the API takes them, and the names whose JSON does not parse.
export function sampleVariables(
	defs: PromptVariable[],
	values: Record<string, SampleValue>
): { variables: Record<string, unknown>; invalid: Record<string, string> } {
	const variables: Record<string, unknown> = {};
	const invalid: Record<string, string> = {};
	for (const d of defs) {
		const v = values[d.name];
		if (v === undefined || (v === "" && d.type !== "string")) continue;
		if (d.type === "list" || d.type === "object") {
			try {
				variables[d.name] = JSON.parse(String(v));
			} catch {
				invalid[d.name] = `is not valid JSON (${d.type === "list" ? "[…]" : "{…}"})`;
			}
		} else variables[d.name] = v;
	}
	return { variables, invalid };
}

// production first, then staging, then the rest by name.
export function sortLabels<T extends { name: string }>(labels: T[]): T[] {
	const rank = (n: string) => (n === "production" ? 0 : n === "staging" ? 1 : 2);
	return [...labels].sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
}

export const labelEntries = (labels: Record<string, number>) =>
	sortLabels(Object.entries(labels).map(([name, version]) => ({ name, version })));

export { formatDateTime, timeAgo, parseTags } from "@/components/secrets/format";
