// JSON Schema validation of tool arguments and structured results (ajv, the validator the MCP SDK itself uses),
// compiled once per schema. A failure names the field as the platform's 422s do: "arguments.path.to.field".
import crypto from "crypto";
import Ajv, { type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import canonicalize from "canonicalize";
import { invalid } from "../../lib/errors";

const ajv = new Ajv({ strict: false, allErrors: false, validateSchema: false });
addFormats(ajv);

const compiled = new Map<string, ValidateFunction | Error>();
const MAX_COMPILED = 5000;

export function schemaHash(input: unknown, output: unknown): string {
	return crypto
		.createHash("sha256")
		.update(canonicalize({ input, output: output ?? null }) ?? "")
		.digest("hex");
}

// By the schema object first: a tool's schema is one object in the cached server state, so a warm call neither
// serializes nor hashes it.
const bySchema = new WeakMap<object, ValidateFunction | Error>();

function validatorOf(schema: object): ValidateFunction | Error {
	const known = bySchema.get(schema);
	if (known) return known;
	const v = compiledFor(schema);
	bySchema.set(schema, v);
	return v;
}

function compiledFor(schema: object): ValidateFunction | Error {
	const key = canonicalize(schema) ?? "";
	let v = compiled.get(key);
	if (!v) {
		try {
			v = ajv.compile(schema);
		} catch (err) {
			v = err as Error;
		}
		if (compiled.size >= MAX_COMPILED) compiled.clear();
		compiled.set(key, v);
	}
	return v;
}

// The first problem with `value` against `schema`, as [field, message], or undefined when it is valid.
export function check(schema: object, value: unknown, root: string): [string, string] | undefined {
	const v = validatorOf(schema);
	if (v instanceof Error) return [root, `the tool's schema cannot be used: ${v.message}`];
	if (v(value)) return undefined;
	const e = v.errors?.[0];
	if (!e) return [root, "is not valid"];
	const parts = e.instancePath
		.split("/")
		.slice(1)
		.map(p => p.replace(/~1/g, "/").replace(/~0/g, "~"));
	if (e.keyword === "required") parts.push(String((e.params as { missingProperty: string }).missingProperty));
	if (e.keyword === "additionalProperties")
		parts.push(String((e.params as { additionalProperty: string }).additionalProperty));
	const field = [root, ...parts].join(".");
	const message =
		e.keyword === "required"
			? "is required"
			: e.keyword === "additionalProperties"
				? "is not a parameter of this tool"
				: (e.message ?? "is not valid");
	return [field, message];
}

// Arguments against the tool's input schema: a 422 naming the field.
export function validateArguments(schema: object, args: Record<string, unknown>): void {
	const problem = check(schema, args, "arguments");
	if (problem) throw invalid(problem[0], problem[1]);
}
