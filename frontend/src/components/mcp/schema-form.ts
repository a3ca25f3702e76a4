// A form from a tool's JSON Schema (its inputSchema): one field per top-level property, typed by its schema
// (text, number, checkbox, choice); anything nested (objects, arrays, unions) is edited as JSON. The server checks
// the arguments against the full schema; this only shapes the input.

export type FieldKind = "string" | "number" | "integer" | "boolean" | "enum" | "json";

export interface SchemaField {
	name: string;
	kind: FieldKind;
	required: boolean;
	description?: string;
	options?: string[];
	default?: unknown;
}

type JsonSchema = { type?: string | string[]; enum?: unknown[]; description?: string; default?: unknown };

function kindOf(s: JsonSchema): FieldKind {
	if (Array.isArray(s.enum) && s.enum.every(v => typeof v === "string")) return "enum";
	const type = Array.isArray(s.type) ? s.type.filter(t => t !== "null")[0] : s.type;
	if (type === "string" || type === "number" || type === "integer" || type === "boolean") return type;
	return "json";
}

export function fieldsOf(schema: unknown): SchemaField[] {
	const s = (schema ?? {}) as { properties?: Record<string, JsonSchema>; required?: string[] };
	const required = new Set(s.required ?? []);
	return Object.entries(s.properties ?? {}).map(([name, p]) => ({
		name,
		kind: kindOf(p ?? {}),
		required: required.has(name),
		description: p?.description,
		options: Array.isArray(p?.enum) ? (p.enum as string[]) : undefined,
		default: p?.default
	}));
}

// The form's starting values: defaults where the schema gives them.
export function initialValues(fields: SchemaField[]): Record<string, unknown> {
	const out: Record<string, unknown> = {};
	for (const f of fields) {
		if (f.kind === "boolean") out[f.name] = f.default === true;
		else if (f.kind === "json") out[f.name] = f.default === undefined ? "" : JSON.stringify(f.default, null, 2);
		else out[f.name] = f.default === undefined ? "" : String(f.default);
	}
	return out;
}

// The arguments to send, or the field whose value cannot be read (a number that is not one, JSON that does not parse).
export function argumentsOf(
	fields: SchemaField[],
	values: Record<string, unknown>
): { args: Record<string, unknown> } | { field: string; message: string } {
	const args: Record<string, unknown> = {};
	for (const f of fields) {
		const raw = values[f.name];
		if (f.kind === "boolean") {
			args[f.name] = raw === true;
			continue;
		}
		const text = String(raw ?? "").trim();
		if (text === "") continue;
		if (f.kind === "number" || f.kind === "integer") {
			const n = Number(text);
			if (!Number.isFinite(n) || (f.kind === "integer" && !Number.isInteger(n)))
				return {
					field: f.name,
					message: `${f.name} must be ${f.kind === "integer" ? "a whole number" : "a number"}`
				};
			args[f.name] = n;
		} else if (f.kind === "json") {
			try {
				args[f.name] = JSON.parse(text);
			} catch {
				return { field: f.name, message: `${f.name} is not valid JSON` };
			}
		} else args[f.name] = text;
	}
	return { args };
}
