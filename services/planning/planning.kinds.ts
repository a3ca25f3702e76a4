// The entity kinds of planning, one declaration each: the fields a kind carries beyond the common ones (title,
// description, state, parent, dates), with their validation rules. The entities service, its OpenAPI and the UI read
// this table; adding a kind is adding a line here.
import Validator from "fastest-validator";
import { invalid } from "../../lib/errors";

type Rules = Record<string, any>;
export interface KindSpec {
	label: string;
	// Rules for `fields` (fastest-validator), every field optional unless it says otherwise.
	fields: Rules;
	// Kinds whose dates are a span (start_date..due_date), shown on the roadmap timeline.
	timeline?: boolean;
}

const text = (max = 2000) => ({ type: "string", max, optional: true });
const url = { type: "url", optional: true };
const enumOf = (...values: string[]) => ({ type: "enum", values, optional: true });

export const KINDS = {
	project: {
		label: "Project",
		fields: { key: { type: "string", pattern: /^[A-Z][A-Z0-9]{1,9}$/, optional: true }, lead: text(200) }
	},
	task: {
		label: "Task",
		fields: {
			priority: enumOf("none", "low", "medium", "high", "urgent"),
			estimate: { type: "number", min: 0, max: 1000, optional: true },
			assignee: text(200)
		}
	},
	roadmap: { label: "Roadmap", fields: { horizon: enumOf("now", "next", "later") }, timeline: true },
	issue: { label: "Issue", fields: { severity: enumOf("low", "medium", "high", "critical"), reporter: text(200) } },
	release: {
		label: "Release",
		fields: {
			version: { type: "string", pattern: /^v?\d+\.\d+\.\d+([-+][\w.]+)?$/, optional: true },
			notes: text(20000)
		},
		timeline: true
	},
	architecture: {
		label: "Architecture decision",
		fields: {
			status: enumOf("proposed", "accepted", "superseded", "deprecated"),
			context: text(20000),
			decision: text(20000)
		}
	},
	dependency: {
		label: "Dependency",
		fields: {
			package: text(200),
			version: text(100),
			license: text(100),
			ecosystem: enumOf("npm", "pypi", "maven", "go", "cargo", "other")
		}
	},
	incident: {
		label: "Incident",
		fields: {
			severity: enumOf("sev1", "sev2", "sev3", "sev4"),
			started_at: { type: "date", convert: true, optional: true },
			resolved_at: { type: "date", convert: true, optional: true }
		}
	},
	environment: { label: "Environment", fields: { url, tier: enumOf("development", "staging", "production") } },
	debt: {
		label: "Technical debt",
		fields: { impact: enumOf("low", "medium", "high"), effort: enumOf("small", "medium", "large") }
	},
	review: {
		label: "Review",
		fields: { reviewer: text(200), outcome: enumOf("pending", "approved", "changes_requested"), url }
	},
	module: { label: "Module", fields: { path: text(500), owner: text(200) } }
} satisfies Record<string, KindSpec>;

export type Kind = keyof typeof KINDS;
export const KIND_NAMES = Object.keys(KINDS) as Kind[];

const v = new Validator();
const checks = Object.fromEntries(
	KIND_NAMES.map(k => [k, v.compile({ $$root: true, type: "object", strict: true, props: KINDS[k].fields })])
) as unknown as Record<Kind, (value: unknown) => true | { field: string; message?: string }[] | Promise<unknown>>;

// The kind's fields, validated; a 422 names `fields.<name>` of the first that does not fit.
export function checkFields(kind: Kind, fields: unknown): Record<string, unknown> {
	const value = fields ?? {};
	const result = checks[kind](value);
	if (result !== true) {
		const first = (result as { field: string; message?: string }[])[0];
		const name = first.field?.replace(/^\$\$root\.?/, "") || "";
		throw invalid(name ? `fields.${name}` : "fields", first.message ?? `does not fit a ${kind}`);
	}
	return value as Record<string, unknown>;
}

// Plane's state groups, in board order; a task in `completed` or `cancelled` no longer blocks anything.
export const STATE_GROUPS = ["backlog", "unstarted", "started", "completed", "cancelled"] as const;
export type StateGroup = (typeof STATE_GROUPS)[number];
export const CLOSED_GROUPS: StateGroup[] = ["completed", "cancelled"];
export const DEFAULT_STATES: { name: string; group: StateGroup; color: string }[] = [
	{ name: "Backlog", group: "backlog", color: "#9ca3af" },
	{ name: "Todo", group: "unstarted", color: "#60a5fa" },
	{ name: "In Progress", group: "started", color: "#f59e0b" },
	{ name: "Done", group: "completed", color: "#10b981" },
	{ name: "Cancelled", group: "cancelled", color: "#ef4444" }
];

export const RELATION_KINDS = ["blocks", "relates", "duplicates"] as const;

// What every step's config may add, read by the execution engine: retries with back-off, a time limit, a request
// that undoes the step in a rollback, and `irreversible` (a person approves the step before it runs).
const REQUEST = {
	url: { type: "url" },
	method: { type: "enum", values: ["GET", "POST", "PUT", "PATCH", "DELETE"], optional: true },
	body: { type: "any", optional: true }
};
const STEP_OPTIONS = {
	retries: { type: "number", integer: true, min: 0, max: 10, optional: true },
	timeout_ms: { type: "number", integer: true, min: 100, max: 86_400_000, optional: true },
	undo: { type: "object", strict: true, props: REQUEST, optional: true },
	irreversible: { type: "boolean", optional: true }
};

// Plan step kinds and the config each needs (the execution engine runs them; here they are stored and validated).
export const STEP_KINDS = {
	ai_completion: { prompt: { type: "string", min: 1, max: 200 }, variables: { type: "object", optional: true } },
	agent_run: { agent: { type: "string", min: 1, max: 200 }, input: { type: "string", max: 20000, optional: true } },
	mcp_tool_call: {
		server: { type: "string", min: 1, max: 200 },
		tool: { type: "string", min: 1, max: 200 },
		arguments: { type: "object", optional: true }
	},
	http_webhook: REQUEST,
	manual_approval: {
		approvers: { type: "array", items: "string", optional: true },
		message: { type: "string", max: 2000, optional: true }
	},
	sub_workflow: { workflow: { type: "string", min: 1, max: 200 }, inputs: { type: "object", optional: true } }
} satisfies Record<string, Rules>;
export type StepKind = keyof typeof STEP_KINDS;
export type StepOptions = { retries?: number; timeout_ms?: number; undo?: StepRequest; irreversible?: boolean };
export type StepRequest = { url: string; method?: string; body?: unknown };
export const STEP_KIND_NAMES = Object.keys(STEP_KINDS) as StepKind[];
const stepChecks = Object.fromEntries(
	STEP_KIND_NAMES.map(k => [
		k,
		v.compile({ $$root: true, type: "object", strict: true, props: { ...STEP_KINDS[k], ...STEP_OPTIONS } })
	])
) as unknown as Record<StepKind, (value: unknown) => true | { field: string; message?: string }[] | Promise<unknown>>;

// A step's config for its kind; a 422 names `steps[i].config.<name>`.
export function checkStepConfig(index: number, kind: StepKind, config: unknown): Record<string, unknown> {
	const value = config ?? {};
	const result = stepChecks[kind](value);
	if (result !== true) {
		const first = (result as { field: string; message?: string }[])[0];
		const name = first.field?.replace(/^\$\$root\.?/, "") || "";
		throw invalid(`steps[${index}].config${name ? "." + name : ""}`, first.message ?? `does not fit ${kind}`);
	}
	return value as Record<string, unknown>;
}
