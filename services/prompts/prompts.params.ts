// What the prompts actions accept (fastest-validator rules, which OpenAPI and the UI's types are built from).
import { PARTIAL_NAME } from "./render";
import { variableRule } from "./variables";

export const LABEL = /^[a-z][a-z0-9_-]{0,49}$/;

export const templateName = { type: "string", pattern: PARTIAL_NAME, label: "Name" };
export const labelName = { type: "string", pattern: LABEL, label: "Label" };

export const messageRule = {
	type: "object",
	strict: true,
	props: {
		role: { type: "enum", values: ["system", "user", "assistant"] },
		content: { type: "string", max: 100_000 }
	}
};

// What a version sends to the model besides its messages: a model or preset name of the ai module and the chat
// parameters it uses.
export const modelSettingsRule = {
	type: "object",
	strict: true,
	optional: true,
	props: {
		model: { type: "string", min: 1, max: 200, optional: true },
		temperature: { type: "number", min: 0, max: 2, optional: true },
		top_p: { type: "number", min: 0, max: 1, optional: true },
		max_tokens: { type: "number", integer: true, positive: true, optional: true },
		max_completion_tokens: { type: "number", integer: true, positive: true, optional: true },
		stop: { type: "array", items: "string", max: 4, optional: true },
		response_format: { type: "object", optional: true },
		seed: { type: "number", integer: true, optional: true },
		presence_penalty: { type: "number", min: -2, max: 2, optional: true },
		frequency_penalty: { type: "number", min: -2, max: 2, optional: true },
		reasoning_effort: { type: "string", max: 20, optional: true }
	}
};

// One version's content.
export const versionParams = {
	messages: { type: "array", items: messageRule, min: 1, max: 100, label: "Messages" },
	variables: { type: "array", items: variableRule, max: 100, optional: true, label: "Variables" },
	model_settings: modelSettingsRule,
	note: { type: "string", max: 2000, optional: true, label: "Note" }
};

// Which version of which template: by label (default production) or by number.
export const referenceParams = {
	name: templateName,
	label: { ...labelName, optional: true },
	version: { type: "number", integer: true, positive: true, optional: true, convert: true, label: "Version" },
	variables: { type: "object", optional: true, label: "Variables" },
	// Whose request this is (a user or session key), recorded with the execution (experiments assign by it).
	subject: { type: "string", max: 200, optional: true }
};

export const templateMeta = {
	description: { type: "string", max: 2000, optional: true, label: "Description" },
	tags: { type: "array", items: { type: "string", min: 1, max: 50 }, max: 20, optional: true, label: "Tags" }
};
