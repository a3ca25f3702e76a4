// A workflow's graph: its validation (a 422 naming the field of the first thing wrong) and the execution steps a run
// copies from it. Node configs of the plan step kinds are checked by planning's own validators; templates are
// checked to refer to a declared input or to a node the step comes after (otherwise its output may not exist yet).
import Validator from "fastest-validator";
import { Errors } from "moleculer";
import { invalid } from "../../lib/errors";
import { checkStepConfig, STEP_KIND_NAMES, type StepKind } from "../planning/planning.kinds";
import { CONDITION_OPS, GRAPH_STEP_KINDS, parseReference, TEMPLATE, templatesIn } from "../execution/graph-steps";

export const NODE_KINDS = [...STEP_KIND_NAMES, ...GRAPH_STEP_KINDS];
export const INPUT_TYPES = ["string", "number", "boolean", "object"] as const;

export interface GraphNode {
	id: string;
	kind: (typeof NODE_KINDS)[number];
	title: string;
	config: Record<string, unknown>;
	position?: { x: number; y: number };
}
export interface GraphEdge {
	from: string;
	to: string;
	when?: boolean;
}
export interface Graph {
	inputs?: Record<
		string,
		{ type: (typeof INPUT_TYPES)[number]; required?: boolean; default?: unknown; description?: string }
	>;
	nodes: GraphNode[];
	edges: GraphEdge[];
}

const v = new Validator();
type Check = (value: unknown) => true | { field: string; message?: string }[];
const compile = (schema: Record<string, unknown>) => v.compile(schema) as unknown as Check;

const checkShape = compile({
	$$strict: true,
	inputs: {
		type: "record",
		optional: true,
		key: { type: "string", pattern: /^[A-Za-z_][\w-]*$/, max: 100 },
		value: {
			type: "object",
			strict: true,
			props: {
				type: { type: "enum", values: INPUT_TYPES },
				required: { type: "boolean", optional: true },
				default: { type: "any", optional: true },
				description: { type: "string", max: 2000, optional: true }
			}
		}
	},
	nodes: {
		type: "array",
		min: 1,
		max: 200,
		items: {
			type: "object",
			strict: true,
			props: {
				id: {
					type: "string",
					pattern: /^[a-z][a-z0-9_-]{0,62}$/,
					messages: { stringPattern: "must be a slug" }
				},
				kind: { type: "enum", values: NODE_KINDS },
				title: { type: "string", min: 1, max: 300 },
				config: { type: "object", default: {} },
				position: {
					type: "object",
					optional: true,
					strict: true,
					props: { x: "number", y: "number" }
				}
			}
		}
	},
	edges: {
		type: "array",
		max: 1000,
		default: [],
		items: {
			type: "object",
			strict: true,
			props: { from: "string", to: "string", when: { type: "boolean", optional: true } }
		}
	}
});

const checkCondition = compile({
	$$root: true,
	type: "object",
	strict: true,
	props: {
		left: { type: "any" },
		op: { type: "enum", values: CONDITION_OPS },
		right: { type: "any", optional: true },
		retries: { type: "number", integer: true, min: 0, max: 10, optional: true },
		timeout_ms: { type: "number", integer: true, min: 100, max: 86_400_000, optional: true }
	}
});
const checkWait = compile({
	$$root: true,
	type: "object",
	strict: true,
	props: {
		seconds: { type: "number", min: 0, max: 365 * 86_400, optional: true },
		until: { type: "string", optional: true }
	}
});

function firstError(result: true | { field: string; message?: string }[], prefix: string): Error | undefined {
	if (result === true) return undefined;
	const first = result[0];
	const name = first.field?.replace(/^\$\$root\.?/, "") || "";
	return invalid(name ? `${prefix}.${name}` : prefix, first.message ?? "is not valid");
}

// Templates stand for values known only at run time: the validators see a value of the right shape instead.
function withoutTemplates(value: unknown, key = ""): unknown {
	if (typeof value === "string") {
		if (!value.includes("{{")) return value;
		if (/^\{\{[^{}]*\}\}$/.test(value.trim()) && key === "url") return "https://template.invalid/";
		return value.replace(TEMPLATE, "template");
	}
	if (Array.isArray(value)) return value.map(x => withoutTemplates(x));
	if (value && typeof value === "object")
		return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, withoutTemplates(x, k)]));
	return value;
}

function checkNodeConfig(i: number, node: GraphNode) {
	const at = `graph.nodes[${i}].config`;
	if (node.kind === "condition") {
		const err = firstError(checkCondition(node.config), at);
		if (err) throw err;
		return;
	}
	if (node.kind === "wait") {
		const err = firstError(checkWait(node.config), at);
		if (err) throw err;
		const { seconds, until } = node.config as { seconds?: number; until?: string };
		if ((seconds === undefined) === (until === undefined))
			throw invalid(at, "a wait has either seconds or until (an ISO date-time)");
		if (until !== undefined && (!/^\d{4}-\d\d-\d\dT/.test(until) || Number.isNaN(Date.parse(until))))
			throw invalid(`${at}.until`, "must be an ISO date-time such as 2030-01-01T09:00:00Z");
		return;
	}
	try {
		checkStepConfig(i, node.kind as StepKind, withoutTemplates(node.config));
	} catch (err) {
		if (err instanceof Errors.ValidationError) {
			const data = (err.data as { field: string; message: string }[])[0];
			throw invalid(data.field.replace(/^steps\[\d+\]\.config/, at), data.message);
		}
		throw err;
	}
}

// The graph, checked: its shape, unique node ids, edges between known nodes (`when` only out of a condition), no
// cycle, each node's config and each template's reference. Answers the nodes in an order where every node comes
// after the ones it depends on.
export function validateGraph(input: unknown): { graph: Graph; order: GraphNode[] } {
	if (!input || typeof input !== "object" || Array.isArray(input))
		throw invalid("graph", "must be an object with nodes and edges");
	const graph = structuredClone(input) as Graph;
	const shape = firstError(checkShape(graph), "graph");
	if (shape) throw shape;
	const index = new Map<string, number>();
	graph.nodes.forEach((n, i) => {
		if (index.has(n.id)) throw invalid(`graph.nodes[${i}].id`, `"${n.id}" is used by another node`);
		index.set(n.id, i);
	});
	const parents = new Map<string, string[]>(graph.nodes.map(n => [n.id, []]));
	const seen = new Set<string>();
	graph.edges.forEach((e, i) => {
		if (!index.has(e.from)) throw invalid(`graph.edges[${i}].from`, `no node "${e.from}"`);
		if (!index.has(e.to)) throw invalid(`graph.edges[${i}].to`, `no node "${e.to}"`);
		if (e.from === e.to) throw invalid(`graph.edges[${i}].to`, "a node cannot depend on itself");
		if (seen.has(`${e.from}>${e.to}`)) throw invalid(`graph.edges[${i}]`, "the same edge twice");
		seen.add(`${e.from}>${e.to}`);
		const from = graph.nodes[index.get(e.from)!];
		if (e.when !== undefined && from.kind !== "condition")
			throw invalid(
				`graph.edges[${i}].when`,
				`only edges out of a condition node have when ("${e.from}" is a ${from.kind})`
			);
		parents.get(e.to)!.push(e.from);
	});
	// Kahn's algorithm: what is left once no node without unplaced parents remains lies on a cycle.
	const order: GraphNode[] = [];
	const placed = new Set<string>();
	while (order.length < graph.nodes.length) {
		const next = graph.nodes.filter(n => !placed.has(n.id) && parents.get(n.id)!.every(p => placed.has(p)));
		if (!next.length) {
			const stuck = graph.nodes.find(n => !placed.has(n.id))!;
			throw invalid(`graph.edges`, `the graph has a cycle (through node "${stuck.id}")`);
		}
		for (const n of next) {
			placed.add(n.id);
			order.push(n);
		}
	}
	const ancestors = new Map<string, Set<string>>();
	for (const n of order) {
		const mine = new Set<string>();
		for (const p of parents.get(n.id)!) {
			mine.add(p);
			for (const a of ancestors.get(p)!) mine.add(a);
		}
		ancestors.set(n.id, mine);
	}
	graph.nodes.forEach((n, i) => {
		checkNodeConfig(i, n);
		for (const t of templatesIn(n.config)) {
			const field = `graph.nodes[${i}].config${t.at ? "." + t.at : ""}`;
			const ref = parseReference(t.expr);
			if (typeof ref === "string") throw invalid(field, ref);
			if (ref.kind === "inputs" && !graph.inputs?.[ref.name])
				throw invalid(field, `{{${t.expr}}}: the workflow declares no input "${ref.name}"`);
			if (ref.kind === "steps" && !ancestors.get(n.id)!.has(ref.node))
				throw invalid(field, `{{${t.expr}}}: "${ref.node}" is not a node this one comes after`);
		}
	});
	return { graph, order };
}

// The inputs of a run: the declared ones with their defaults, each of its type; an undeclared one is refused.
export function checkInputs(graph: Graph, given: Record<string, unknown> = {}, field = "inputs") {
	const declared = graph.inputs ?? {};
	const out: Record<string, unknown> = {};
	for (const name of Object.keys(given))
		if (!declared[name]) throw invalid(`${field}.${name}`, "the workflow declares no such input");
	for (const [name, spec] of Object.entries(declared)) {
		const value = given[name] ?? spec.default;
		if (value === undefined) {
			if (spec.required) throw invalid(`${field}.${name}`, "is required");
			continue;
		}
		const type = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
		if (type !== spec.type && !(spec.type === "object" && type === "array"))
			throw invalid(`${field}.${name}`, `must be a ${spec.type}`);
		out[name] = value;
	}
	return out;
}

export interface GraphStep {
	position: number;
	node_id: string;
	kind: string;
	title: string;
	config: Record<string, unknown>;
	depends_on: number[];
	depends_when: Record<string, boolean>;
}

// The execution steps of a graph: positions in dependency order, each step's dependencies and their branch.
export function stepsOf(graph: Graph): GraphStep[] {
	const { order } = validateGraph(graph);
	const position = new Map(order.map((n, i) => [n.id, i]));
	return order.map((n, i) => {
		const incoming = graph.edges.filter(e => e.to === n.id);
		return {
			position: i,
			node_id: n.id,
			kind: n.kind,
			title: n.title,
			config: n.config ?? {},
			depends_on: incoming.map(e => position.get(e.from)!),
			depends_when: Object.fromEntries(
				incoming.filter(e => e.when !== undefined).map(e => [String(position.get(e.from)), e.when!])
			)
		};
	});
}
