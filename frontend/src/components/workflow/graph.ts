// The workflow graph as the API stores it and as the canvas (vue-flow) shows it: one conversion each way, each
// kind's label and starting config, and where a 422's field lands (a node's config field, an edge, a form field).
import { MarkerType, type Edge, type Node } from "@vue-flow/core";
import type {
	NodeKind,
	WorkflowDefinitionDetail,
	WorkflowEdge,
	WorkflowGraph,
	WorkflowInput,
	WorkflowInputBody,
	WorkflowNode
} from "@/api/workflow.api";

export const KIND_LABELS: Record<NodeKind, string> = {
	http_webhook: "Webhook",
	ai_completion: "AI completion",
	agent_run: "Agent run",
	mcp_tool_call: "MCP tool call",
	manual_approval: "Manual approval",
	condition: "Condition",
	wait: "Wait",
	sub_workflow: "Sub-workflow"
};

const STARTING_CONFIG: Record<NodeKind, Record<string, unknown>> = {
	http_webhook: { url: "", method: "POST" },
	ai_completion: { prompt: "" },
	agent_run: { agent: "" },
	mcp_tool_call: { server: "", tool: "" },
	manual_approval: {},
	condition: { left: "", op: "eq", right: "" },
	wait: { seconds: 60 },
	sub_workflow: { workflow: "" }
};

export const CONDITION_OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists", "truthy"] as const;

// A node's id names its output in templates ({{steps.<id>.output…}}): a slug.
export const NODE_ID = /^[a-z][a-z0-9_]{0,62}$/;

// What the canvas keeps on a node; `status` and `error` are shown, never saved.
export interface NodeData {
	kind: NodeKind;
	title: string;
	config: Record<string, unknown>;
	status?: string;
	error?: string;
}
export type FlowNode = Node<NodeData>;
export type FlowEdge = Edge<{ when?: boolean }>;

// Configs are JSON; the store's are reactive proxies, which structuredClone refuses.
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));

export function newNodeId(kind: NodeKind, taken: Iterable<string>): string {
	const used = new Set(taken);
	const stem = kind === "http_webhook" ? "webhook" : kind;
	for (let n = 1; ; n++) if (!used.has(`${stem}_${n}`)) return `${stem}_${n}`;
}

export function newNode(kind: NodeKind, id: string, position: { x: number; y: number }): FlowNode {
	return {
		id,
		type: "workflow",
		position,
		data: { kind, title: KIND_LABELS[kind], config: clone(STARTING_CONFIG[kind]) }
	};
}

// An edge out of a condition leaves by its "true" or "false" handle, which is what `when` says.
export function flowEdge(e: WorkflowEdge): FlowEdge {
	const branch = e.when === undefined ? undefined : String(e.when);
	return {
		id: `${e.from}->${e.to}${branch ? `:${branch}` : ""}`,
		source: e.from,
		target: e.to,
		sourceHandle: branch ?? null,
		label: branch,
		class: branch ? `edge--${branch}` : undefined,
		markerEnd: MarkerType.ArrowClosed,
		data: { when: e.when }
	};
}

export function toFlow(graph: WorkflowGraph): { nodes: FlowNode[]; edges: FlowEdge[] } {
	return {
		nodes: graph.nodes.map((n, i) => ({
			id: n.id,
			type: "workflow",
			// A graph written through the API may have no positions: a plain row.
			position: n.position ?? { x: 40 + i * 240, y: 80 },
			data: { kind: n.kind, title: n.title, config: clone(n.config ?? {}) }
		})),
		edges: graph.edges.map(flowEdge)
	};
}

export function toGraph(
	nodes: FlowNode[],
	edges: FlowEdge[],
	inputs: Record<string, WorkflowInput> | undefined
): WorkflowGraph {
	return {
		...(inputs && Object.keys(inputs).length ? { inputs } : {}),
		nodes: nodes.map((n): WorkflowNode => ({
			id: n.id,
			kind: n.data!.kind,
			title: n.data!.title,
			config: n.data!.config,
			position: { x: Math.round(n.position.x), y: Math.round(n.position.y) }
		})),
		edges: edges.map(e => ({
			from: e.source,
			to: e.target,
			...(e.data?.when === undefined ? {} : { when: e.data.when })
		}))
	};
}

// Where a field the server names belongs: "graph.nodes[2].config.url" (or "graph.nodes.2.config.url") is node 2's
// "config.url"; "graph.edges[0].to" is edge 0; anything else is a field of the workflow's own form.
export type ErrorPlace = { node: number; field: string } | { edge: number; field: string } | { form: string };

export function placeError(field: string): ErrorPlace {
	const m = /^(?:graph\.)?(nodes|edges)(?:\[(\d+)\]|\.(\d+))\.?(.*)$/.exec(field);
	if (!m) return { form: field };
	const index = Number(m[2] ?? m[3]);
	return m[1] === "nodes" ? { node: index, field: m[4] } : { edge: index, field: m[4] };
}

export interface GraphErrors {
	// Node id -> its field ("" for the node as a whole, "config.url") -> message.
	nodes: Record<string, Record<string, string>>;
	edges: Record<string, string>;
	form: Record<string, string>;
}

export function sortErrors(fields: Record<string, string>, nodes: FlowNode[], edges: FlowEdge[]): GraphErrors {
	const out: GraphErrors = { nodes: {}, edges: {}, form: {} };
	for (const [field, message] of Object.entries(fields)) {
		const at = placeError(field);
		if ("node" in at && nodes[at.node]) (out.nodes[nodes[at.node].id] ??= {})[at.field] = message;
		else if ("edge" in at && edges[at.edge]) out.edges[edges[at.edge].id] = message;
		else out.form["form" in at ? at.form : field] = message;
	}
	return out;
}

// The workflow's own fields as its form edits them.
export interface InputRow {
	name: string;
	type: WorkflowInput["type"];
	required: boolean;
	// As typed; read as the input's type on save.
	default: string;
	description: string;
}
export interface SettingsDraft {
	name: string;
	description: string;
	enabled: boolean;
	inputs: InputRow[];
	scheduled: boolean;
	cron: string;
	timezone: string;
	scheduleInputs: Record<string, unknown> | undefined;
	concurrency: number | "";
}

export function emptyDraft(): SettingsDraft {
	return {
		name: "",
		description: "",
		enabled: true,
		inputs: [],
		scheduled: false,
		cron: "0 * * * *",
		timezone: "UTC",
		scheduleInputs: undefined,
		concurrency: ""
	};
}

export function draftFrom(d: WorkflowDefinitionDetail, inputs: WorkflowGraph["inputs"]): SettingsDraft {
	return {
		name: d.name,
		description: d.description ?? "",
		enabled: d.enabled,
		inputs: Object.entries(inputs ?? {}).map(([name, i]) => ({
			name,
			type: i.type,
			required: !!i.required,
			default:
				i.default === undefined ? "" : typeof i.default === "string" ? i.default : JSON.stringify(i.default),
			description: i.description ?? ""
		})),
		scheduled: !!d.schedule,
		cron: d.schedule?.cron ?? "0 * * * *",
		timezone: d.schedule?.timezone ?? "UTC",
		scheduleInputs: d.schedule?.inputs,
		concurrency: d.concurrency?.limit ?? ""
	};
}

// A typed value as its input's type reads it; what does not read is sent as typed, for the server to name.
export function readValue(type: WorkflowInput["type"], text: string): unknown {
	if (type === "string") return text;
	if (type === "number") return text.trim() === "" || Number.isNaN(Number(text)) ? text : Number(text);
	if (type === "boolean") return text === "true" ? true : text === "false" ? false : text;
	try {
		return JSON.parse(text);
	} catch {
		return text;
	}
}

export function inputsFrom(rows: InputRow[]): Record<string, WorkflowInput> {
	return Object.fromEntries(
		rows
			.filter(r => r.name.trim())
			.map(r => [
				r.name.trim(),
				{
					type: r.type,
					...(r.required ? { required: true } : {}),
					...(r.default !== "" ? { default: readValue(r.type, r.default) } : {}),
					...(r.description ? { description: r.description } : {})
				}
			])
	);
}

export function bodyFrom(s: SettingsDraft, graph: WorkflowGraph): WorkflowInputBody {
	return {
		name: s.name,
		description: s.description,
		enabled: s.enabled,
		graph,
		schedule: s.scheduled
			? {
					cron: s.cron,
					...(s.timezone ? { timezone: s.timezone } : {}),
					...(s.scheduleInputs ? { inputs: s.scheduleInputs } : {})
				}
			: null,
		concurrency: s.concurrency === "" ? null : { limit: Number(s.concurrency) }
	};
}
