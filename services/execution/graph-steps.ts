// The steps a workflow graph adds to the plan step kinds, and its templates. A `condition` step compares two values
// and answers { result }; a `wait` step sleeps until a time (the run is parked meanwhile, holding no lease). String
// values of a step's config may hold `{{inputs.<name>}}` and `{{steps.<node>.output.<path>}}`, resolved just before
// the step runs; a reference to nothing fails the step for good (retrying cannot make the value appear).
import crypto from "crypto";
import { PermanentStepError } from "./step-kinds";

// A uuid that is always the same for the same text (a schedule tick's run, a sub-workflow step's child run): a start
// asked again, by any replica, names the run it already made.
export function uuidFrom(text: string): string {
	const h = crypto.createHash("sha256").update(text).digest("hex");
	return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const GRAPH_STEP_KINDS = ["condition", "wait"] as const;
export type GraphStepKind = (typeof GRAPH_STEP_KINDS)[number];

export const CONDITION_OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists", "truthy"] as const;
export type ConditionOp = (typeof CONDITION_OPS)[number];

// `{{ inputs.name }}`, `{{ steps.fetch.output.body.items.0 }}`.
export const TEMPLATE = /\{\{\s*([^{}]*?)\s*\}\}/g;
const REFERENCE = /^(inputs\.[A-Za-z_][\w-]*|steps\.[a-z][a-z0-9_-]*\.output)(\.[\w-]+)*$/;

export type TemplateRef = { kind: "inputs"; name: string } | { kind: "steps"; node: string };

// What a template expression refers to, or why it is not one.
export function parseReference(expr: string): TemplateRef | string {
	if (!REFERENCE.test(expr))
		return `"{{${expr}}}" is not a reference: use {{inputs.<name>}} or {{steps.<node>.output.<path>}}`;
	const [root, name] = expr.split(".");
	return root === "inputs" ? { kind: "inputs", name } : { kind: "steps", node: name };
}

// Every template expression in a config's strings, with where it is (`url`, `body.text`).
export function templatesIn(value: unknown, at = ""): { at: string; expr: string }[] {
	if (typeof value === "string") return [...value.matchAll(TEMPLATE)].map(m => ({ at, expr: m[1] }));
	if (Array.isArray(value)) return value.flatMap((v, i) => templatesIn(v, `${at}[${i}]`));
	if (value && typeof value === "object")
		return Object.entries(value).flatMap(([k, v]) => templatesIn(v, at ? `${at}.${k}` : k));
	return [];
}

export interface TemplateScope {
	inputs: Record<string, unknown>;
	// Outputs of the run's steps by their graph node.
	steps: Record<string, unknown>;
}

// A step's output read along a path; a string holding JSON (a webhook's body) is read as what it holds.
function lookup(scope: TemplateScope, expr: string): unknown {
	const [root, ...rest] = expr.split(".");
	let value: unknown;
	if (root === "inputs") value = scope.inputs;
	else {
		const node = rest.shift()!;
		rest.shift(); // "output"
		if (!(node in scope.steps)) return undefined;
		value = scope.steps[node];
	}
	for (const key of rest) {
		if (typeof value === "string" && /^\s*[[{]/.test(value))
			try {
				value = JSON.parse(value);
			} catch {
				return undefined;
			}
		if (value === null || typeof value !== "object" || !Object.prototype.hasOwnProperty.call(value, key))
			return undefined;
		value = (value as Record<string, unknown>)[key];
	}
	return value;
}

const asText = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));

// The config with its templates filled in. A string that is one template takes the value as it is (a number stays
// a number for a condition); a template inside a longer string is written as text. `lenient`: a reference to
// nothing is undefined instead of a failure (a condition's `exists` asks exactly that).
export function resolveTemplates<T>(value: T, scope: TemplateScope, at = "config", lenient = false): T {
	if (typeof value === "string") {
		const whole = /^\{\{\s*([^{}]*?)\s*\}\}$/.exec(value);
		const read = (expr: string) => {
			const found = lookup(scope, expr);
			if (found === undefined && !lenient)
				throw new PermanentStepError(`${at}: the template {{${expr}}} refers to nothing (${expr} is missing)`);
			return found;
		};
		if (whole) return read(whole[1]) as T;
		return value.replace(TEMPLATE, (_, expr: string) => asText(read(expr) ?? "")) as T;
	}
	if (Array.isArray(value)) return value.map((v, i) => resolveTemplates(v, scope, `${at}[${i}]`, lenient)) as T;
	if (value && typeof value === "object")
		return Object.fromEntries(
			Object.entries(value).map(([k, v]) => [k, resolveTemplates(v, scope, `${at}.${k}`, lenient)])
		) as T;
	return value;
}

export const hasTemplates = (config: unknown) => /\{\{[^{}]*\}\}/.test(JSON.stringify(config ?? null));

const numeric = (v: unknown) =>
	typeof v === "number" || (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)));

// A condition's result. Numbers compare as numbers (a template gives "5" as well as 5), anything else as text.
export function evaluateCondition(config: { left?: unknown; op: ConditionOp; right?: unknown }): boolean {
	const { left, op, right } = config;
	const bothNumbers = numeric(left) && numeric(right);
	const l = bothNumbers ? Number(left) : left;
	const r = bothNumbers ? Number(right) : right;
	switch (op) {
		case "eq":
			return bothNumbers ? l === r : asText(l) === asText(r);
		case "ne":
			return bothNumbers ? l !== r : asText(l) !== asText(r);
		case "gt":
			return bothNumbers ? (l as number) > (r as number) : asText(l) > asText(r);
		case "gte":
			return bothNumbers ? (l as number) >= (r as number) : asText(l) >= asText(r);
		case "lt":
			return bothNumbers ? (l as number) < (r as number) : asText(l) < asText(r);
		case "lte":
			return bothNumbers ? (l as number) <= (r as number) : asText(l) <= asText(r);
		case "contains":
			return Array.isArray(l) ? l.some(x => asText(x) === asText(r)) : asText(l ?? "").includes(asText(r));
		case "exists":
			return l !== undefined && l !== null && l !== "";
		case "truthy":
			return !!l && l !== "false" && l !== "0";
	}
}

// When a wait step started at `startedAt` wakes.
export function wakeAtOf(config: { seconds?: number; until?: string }, startedAt: Date): Date {
	if (config.until !== undefined) return new Date(config.until);
	return new Date(startedAt.getTime() + Number(config.seconds ?? 0) * 1000);
}
