// A template's typed variables: what a version declares (checked when it is published) and the values a render gets
// (checked before anything is rendered). Every refusal is a 422 naming the variable as `variables.<name>`.
import { invalid } from "../../lib/errors";

export const VARIABLE_TYPES = ["string", "number", "boolean", "enum", "list", "object"] as const;
export type VariableType = (typeof VARIABLE_TYPES)[number];

export interface VariableDef {
	name: string;
	type: VariableType;
	required?: boolean; // default true, unless a default is given
	default?: unknown;
	maxLength?: number; // string: characters; list: items
	values?: string[]; // enum
	description?: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const MAX_VALUE_JSON = 200_000;

// The rule a version's `variables` is validated with (fastest-validator), before the finer checks below.
export const variableRule = {
	type: "object",
	strict: "remove",
	props: {
		name: { type: "string", pattern: NAME, label: "Variable name" },
		type: { type: "enum", values: [...VARIABLE_TYPES] },
		required: { type: "boolean", optional: true },
		default: { type: "any", optional: true },
		maxLength: { type: "number", integer: true, positive: true, optional: true },
		values: { type: "array", items: { type: "string", min: 1, max: 200 }, min: 1, max: 200, optional: true },
		description: { type: "string", max: 500, optional: true }
	}
};

// Declarations that make sense together: unique names, enum values for an enum, a default of the declared type.
export function checkDefinitions(defs: VariableDef[], field = "variables"): void {
	const seen = new Set<string>();
	defs.forEach((d, i) => {
		const at = `${field}[${i}]`;
		if (seen.has(d.name)) throw invalid(`${at}.name`, `variable "${d.name}" is declared twice`);
		seen.add(d.name);
		if (d.type === "enum" && !d.values?.length) throw invalid(`${at}.values`, "an enum variable lists its values");
		if (d.type !== "enum" && d.values) throw invalid(`${at}.values`, "only an enum variable has values");
		if (d.maxLength !== undefined && d.type !== "string" && d.type !== "list")
			throw invalid(`${at}.maxLength`, "only a string or list variable has a maximum length");
		if (d.default !== undefined) {
			const problem = typeProblem(d, d.default);
			if (problem) throw invalid(`${at}.default`, `the default ${problem}`);
		}
	});
}

// What is wrong with `value` for the declaration, or undefined.
function typeProblem(d: VariableDef, value: unknown): string | undefined {
	switch (d.type) {
		case "string":
			if (typeof value !== "string") return "must be a string";
			if (d.maxLength !== undefined && value.length > d.maxLength)
				return `must be at most ${d.maxLength} characters`;
			return undefined;
		case "number":
			return typeof value === "number" && Number.isFinite(value) ? undefined : "must be a number";
		case "boolean":
			return typeof value === "boolean" ? undefined : "must be true or false";
		case "enum":
			return typeof value === "string" && d.values!.includes(value)
				? undefined
				: `must be one of ${d.values!.join(", ")}`;
		case "list":
			if (!Array.isArray(value)) return "must be a list";
			if (d.maxLength !== undefined && value.length > d.maxLength)
				return `must have at most ${d.maxLength} items`;
			return undefined;
		case "object":
			return value !== null && typeof value === "object" && !Array.isArray(value)
				? undefined
				: "must be an object";
	}
}

// The values a render uses: each declared variable from `given` or its default, type-checked; a missing required
// one, an ill-typed one or one the template does not declare is refused naming it (`<field>.<name>`). Values are
// copied through JSON, so what reaches the template is plain data (no functions, getters or prototypes of the
// caller's objects).
export function bindVariables(
	defs: VariableDef[],
	given: Record<string, unknown> = {},
	field = "variables"
): Record<string, unknown> {
	const declared = new Set(defs.map(d => d.name));
	for (const name of Object.keys(given))
		if (!declared.has(name)) throw invalid(`${field}.${name}`, "is not a variable of this template");
	const out: Record<string, unknown> = {};
	for (const d of defs) {
		const has = Object.prototype.hasOwnProperty.call(given, d.name) && given[d.name] !== undefined;
		const value = has ? given[d.name] : d.default;
		if (value === undefined || value === null) {
			if (d.required !== false && d.default === undefined)
				throw invalid(`${field}.${d.name}`, `is required (${d.type})`);
			out[d.name] = null; // optional and absent: defined, so strict rendering sees an empty value
			continue;
		}
		const problem = typeProblem(d, value);
		if (problem) throw invalid(`${field}.${d.name}`, problem);
		const json = JSON.stringify(value);
		if (json.length > MAX_VALUE_JSON) throw invalid(`${field}.${d.name}`, "is too large");
		out[d.name] = JSON.parse(json);
	}
	return out;
}
