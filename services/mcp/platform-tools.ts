// The platform's own tools, as agents (services/ai/agent-*.ts) and MCP clients (services/mcp/server/) see them. A tool
// is a thin wrapper over a published action, called with the caller's context: the action's own permission check
// (lib/authz.ts) decides, exactly as it does for REST, and the organization is the caller's. Add a tool here and both
// the agents and the /mcp endpoint offer it.
//
// Planning tasks: the planning module does not exist yet. When it does, add a `planning_tasks` tool here calling its
// list/create actions (e.g. `planning-tasks.list`); nothing else needs to change.
import type { Context } from "moleculer";
import { actionMissing, unavailable } from "../../lib/errors";

export interface PlatformTool {
	name: string;
	title: string;
	description: string;
	// JSON Schema of the arguments, as MCP and OpenAI's function tools both take it.
	input_schema: { type: "object"; properties: Record<string, unknown>; required?: string[] };
	// The action it calls: its permission is the one the tool needs.
	action: string;
	// As MCP's tool annotations: a read-only or idempotent tool is made again when a resumed agent run finds its call
	// started but unanswered (services/ai/agent-loop.ts).
	annotations: { readOnlyHint?: boolean; idempotentHint?: boolean };
	run(ctx: Context, args: Record<string, any>): Promise<unknown>;
}

// The action's answer; a module that is not running is a 503 naming it, not a "service not found".
async function callAction(ctx: Context, action: string, params: object): Promise<any> {
	try {
		return await ctx.call(action, params);
	} catch (err) {
		if (actionMissing(err, action)) throw unavailable(`${action} is not available: its module is not running`);
		throw err;
	}
}

export const PLATFORM_TOOLS: PlatformTool[] = [
	{
		name: "knowledge_search",
		title: "Search the knowledge base",
		description: "Ranked published knowledge-base articles matching a query, with snippets.",
		input_schema: {
			type: "object",
			properties: {
				query: { type: "string", description: "what to search for" },
				k: { type: "integer", minimum: 1, maximum: 50, description: "how many results (default 10)" }
			},
			required: ["query"]
		},
		action: "knowledge.search",
		annotations: { readOnlyHint: true },
		run: (ctx, a) => callAction(ctx, "knowledge.search", { query: a.query, ...(a.k ? { k: a.k } : {}) })
	},
	{
		name: "usage_summary",
		title: "Usage summary",
		description: "The organization's usage (tokens, requests, tool calls, cost) over a period (default: today).",
		input_schema: {
			type: "object",
			properties: {
				from: { type: "string", description: "ISO date or time the period starts" },
				to: { type: "string", description: "ISO date or time the period ends" }
			}
		},
		action: "usage.summary",
		annotations: { readOnlyHint: true },
		run: (ctx, a) =>
			callAction(ctx, "usage.summary", { ...(a.from ? { from: a.from } : {}), ...(a.to ? { to: a.to } : {}) })
	},
	{
		name: "secret_names",
		title: "Secret names",
		description: "Names (never values) of the organization's secrets, optionally of one environment.",
		input_schema: {
			type: "object",
			properties: {
				environment: { type: "string", description: "e.g. production, staging, development" },
				search: { type: "string", description: "part of a name or description" }
			}
		},
		action: "secrets.list",
		annotations: { readOnlyHint: true },
		async run(ctx, a) {
			const rows: { name: string; environment: string }[] = await callAction(ctx, "secrets.list", {
				...(a.environment ? { environment: a.environment } : {}),
				...(a.search ? { search: a.search } : {})
			});
			// Only names and environments leave: the list has no values, and nothing else is needed to refer to one.
			return { secrets: rows.map(r => ({ name: r.name, environment: r.environment })) };
		}
	},
	{
		name: "prompts_render",
		title: "Render a managed prompt",
		description: "Render a prompt template (by name, optional label or version) with variables into messages.",
		input_schema: {
			type: "object",
			properties: {
				name: { type: "string", description: "the template's name" },
				label: { type: "string", description: "a label such as production" },
				version: { type: "integer", minimum: 1 },
				variables: { type: "object", description: "values for the template's variables" }
			},
			required: ["name"]
		},
		action: "prompts.render",
		annotations: { readOnlyHint: true },
		async run(ctx, a) {
			const r = await callAction(ctx, "prompts.render", {
				name: a.name,
				...(a.label ? { label: a.label } : {}),
				...(a.version ? { version: a.version } : {}),
				...(a.variables ? { variables: a.variables } : {})
			});
			return { messages: r.messages, model_settings: r.model_settings ?? null, version: r.version?.version };
		}
	}
];

export function platformTool(name: string): PlatformTool | undefined {
	return PLATFORM_TOOLS.find(t => t.name === name);
}
