// The platform's own tools, as agents (services/ai/agent-*.ts) and MCP clients (services/mcp/server/) see them. A tool
// is a thin wrapper over a published action, called with the caller's context: the action's own permission check
// (lib/authz.ts) decides, exactly as it does for REST, and the organization is the caller's. Add a tool here and both
// the agents and the /mcp endpoint offer it.

import type { Context } from "moleculer";
import { callModule } from "../../lib/errors";

export interface PlatformTool {
	name: string;
	title: string;
	description: string;
	// JSON Schema of the arguments, as MCP and OpenAI's function tools both take it.
	input_schema: { type: "object"; properties: Record<string, unknown>; required?: string[] };
	// The action it calls: its permission is the one the tool needs.
	action: string;
	// MCP's tool annotations, told to MCP clients with the tool. A read-only or idempotent tool is made again when a
	// resumed agent run finds its call started but unanswered (services/ai/agent-loop.ts); one not read-only writes,
	// and an agent run asks a person before calling it (`needsApproval`).
	annotations: { readOnlyHint?: boolean; idempotentHint?: boolean; destructiveHint?: boolean };
	run(ctx: Context, args: Record<string, any>): Promise<unknown>;
}

// The action's answer; a module that is not running is a 503 naming it, not a "service not found".
const callAction = callModule;

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
	},
	{
		name: "planning_tasks",
		title: "List or search planning tasks",
		annotations: { readOnlyHint: true },
		description: "The organization's planning tasks, newest first, optionally matching words or of one project.",
		input_schema: {
			type: "object",
			properties: {
				search: { type: "string", description: "words in the title or description" },
				project_id: { type: "string", description: "only the tasks of this project (its id)" },
				limit: { type: "integer", minimum: 1, maximum: 100, description: "how many (default 20)" }
			}
		},
		action: "planning-entities.list",
		async run(ctx, a) {
			const page: { rows: Record<string, unknown>[]; total: number } = await callAction(
				ctx,
				"planning-entities.list",
				{
					query: { kind: "task", ...(a.project_id ? { parent_id: a.project_id } : {}) },
					...(a.search ? { search: a.search } : {}),
					pageSize: a.limit ?? 20,
					sort: "-created_at"
				}
			);
			return { tasks: page.rows.map(taskOf), total: page.total };
		}
	},
	{
		name: "planning_task_create",
		// Writes, and not idempotent: a resumed agent run reports an interrupted create instead of making a second task.
		annotations: { readOnlyHint: false, destructiveHint: false },
		title: "Create a planning task",
		description: "Creates a task in the organization's backlog, optionally under a project.",
		input_schema: {
			type: "object",
			properties: {
				title: { type: "string", description: "what is to be done" },
				description: { type: "string" },
				project_id: { type: "string", description: "the project it belongs to (its id)" },
				priority: { type: "string", enum: ["none", "low", "medium", "high", "urgent"] },
				estimate: { type: "number", minimum: 0, description: "effort, in the team's unit" }
			},
			required: ["title"]
		},
		action: "planning-entities.create",
		async run(ctx, a) {
			const fields = {
				...(a.priority != null ? { priority: a.priority } : {}),
				...(a.estimate != null ? { estimate: a.estimate } : {})
			};
			const row = await callAction(ctx, "planning-entities.create", {
				kind: "task",
				title: a.title,
				...(a.description != null ? { description: a.description } : {}),
				...(a.project_id ? { parent_id: a.project_id } : {}),
				fields
			});
			return { task: taskOf(row) };
		}
	}
];

// What a tool tells of a task: no organization id or bookkeeping columns.
function taskOf(r: Record<string, any>) {
	return {
		id: r.id,
		title: r.title,
		description: r.description,
		state_id: r.state_id,
		project_id: r.parent_id,
		fields: r.fields,
		article_ids: r.article_ids,
		created_at: r.created_at
	};
}

// A tool that writes waits for a person's approval in an agent run, as an MCP server's tool marked requires_approval.
export const needsApproval = (t: PlatformTool) => t.annotations.readOnlyHint !== true;

export function platformTool(name: string): PlatformTool | undefined {
	return PLATFORM_TOOLS.find(t => t.name === name);
}
