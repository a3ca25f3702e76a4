// The tools an agent run offers its model: the platform's own (tool-set "platform", services/mcp/platform-tools.ts)
// and those of MCP servers named as tool-sets (through the mcp module's `mcp-tools.available` and `mcp.call`, with
// the caller's context, so its allow-lists and permissions apply). Each becomes an OpenAI function tool named
// `<set>__<tool>`; the run keeps the catalogue, so a run resumed on another replica offers the same tools.
import type { Context } from "moleculer";
import { actionMissing, invalid, unavailable } from "../../lib/errors";
import { needsApproval, PLATFORM_TOOLS, platformTool } from "../mcp/platform-tools";

export const PLATFORM_SET = "platform";

export interface AgentTool {
	server: string | null; // null: a platform tool
	tool: string;
	requires_approval: boolean;
	// Safe to make again when a replica died during the call (its result unknown): the tool says it is read-only or
	// idempotent (MCP's readOnlyHint / idempotentHint, the platform tool's own annotations). Absent: not safe.
	retry_safe?: boolean;
	description: string;
	parameters: Record<string, unknown>;
}
export type Catalogue = Record<string, AgentTool>;

export interface ToolOutcome {
	is_error: boolean;
	content: unknown[];
	structured_content?: unknown;
	duration_ms: number;
}

interface AvailableTool {
	server_name: string;
	name: string;
	description?: string;
	input_schema: Record<string, unknown>;
	requires_approval: boolean;
	annotations?: { readOnlyHint?: boolean; idempotentHint?: boolean } | null;
}

const repeatable = (a: AvailableTool["annotations"]) => a?.readOnlyHint === true || a?.idempotentHint === true;

// OpenAI's function names: letters, digits, _ and -, at most 64.
function functionName(set: string, tool: string, taken: Catalogue): string {
	const base = `${set}__${tool}`.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 60);
	let name = base;
	for (let i = 2; taken[name]; i++) name = `${base}_${i}`;
	return name;
}

export async function catalogueOf(ctx: Context, toolSets: string[]): Promise<Catalogue> {
	const catalogue: Catalogue = {};
	if (toolSets.includes(PLATFORM_SET))
		for (const t of PLATFORM_TOOLS)
			catalogue[functionName(PLATFORM_SET, t.name, catalogue)] = {
				server: null,
				tool: t.name,
				requires_approval: needsApproval(t),
				retry_safe: repeatable(t.annotations),
				description: t.description,
				parameters: t.input_schema
			};
	const servers = toolSets.filter(s => s !== PLATFORM_SET);
	if (!servers.length) return catalogue;
	let available: AvailableTool[];
	try {
		({ tools: available } = await ctx.call<{ tools: AvailableTool[] }, object>("mcp-tools.available", { servers }));
	} catch (err) {
		if (actionMissing(err, "mcp-tools.available"))
			throw unavailable("MCP tool-sets are not available: the mcp module is not running");
		throw err;
	}
	for (const server of servers)
		if (!available.some(t => t.server_name === server))
			throw invalid("tool_sets", `no tools available from MCP server "${server}"`);
	for (const t of available)
		catalogue[functionName(t.server_name, t.name, catalogue)] = {
			server: t.server_name,
			tool: t.name,
			requires_approval: !!t.requires_approval,
			retry_safe: repeatable(t.annotations),
			description: t.description ?? "",
			parameters: t.input_schema ?? { type: "object", properties: {} }
		};
	return catalogue;
}

// As chat completions take them.
export function functionsOf(catalogue: Catalogue) {
	return Object.entries(catalogue).map(([name, t]) => ({
		type: "function",
		function: { name, description: t.description.slice(0, 1000), parameters: t.parameters }
	}));
}

// A refusal by the usage module's quotas or budgets: it ends the run (budget_exceeded), whatever refused it.
export const limitRefusal = (err: unknown) => {
	const type = (err as { type?: string })?.type;
	return type === "QUOTA_EXCEEDED" || type === "BUDGET_EXCEEDED";
};

// The function tools whose calls are counted where they run, not with the model turn that asks for them: an MCP
// server's tool is counted by its execution (the mcp module's event), so each call counts once against a tool-call
// quota. A platform tool's call is counted with the turn.
export const countedOnRun = (catalogue: Catalogue) =>
	Object.entries(catalogue)
		.filter(([, t]) => t.server !== null)
		.map(([name]) => name);

// One call. A refusal or failure becomes an error result the model reads (it may try otherwise), never a thrown
// error: one bad call does not end the run. A quota or budget's refusal does (limitRefusal): it is thrown.
export async function runTool(
	ctx: Context,
	t: AgentTool,
	args: Record<string, unknown>,
	opts: { approved: boolean; requestId: string }
): Promise<ToolOutcome> {
	const started = Date.now();
	try {
		if (t.server === null) {
			const result = await platformTool(t.tool)!.run(ctx, args);
			return {
				is_error: false,
				content: [{ type: "text", text: JSON.stringify(result) }],
				structured_content: result,
				duration_ms: Date.now() - started
			};
		}
		const params = { server: t.server, tool: t.tool, arguments: args, approved: opts.approved };
		const r = await ctx.call<ToolOutcome, object>("mcp.call", params, { requestID: opts.requestId });
		return { ...r, duration_ms: r.duration_ms ?? Date.now() - started };
	} catch (err) {
		if (limitRefusal(err)) throw err;
		const e = err as { message?: string; code?: number };
		return {
			is_error: true,
			content: [{ type: "text", text: `error${e.code ? ` ${e.code}` : ""}: ${e.message ?? String(err)}` }],
			duration_ms: Date.now() - started
		};
	}
}

const MAX_RESULT_CHARS = 20_000;

// What the model reads of a result: its text parts, else its JSON.
export function resultText(o: Pick<ToolOutcome, "content" | "structured_content">): string {
	const texts = (o.content ?? [])
		.filter((c): c is { type: "text"; text: string } => (c as { type?: string })?.type === "text")
		.map(c => c.text);
	const text = texts.length ? texts.join("\n") : JSON.stringify(o.structured_content ?? o.content ?? null);
	return text.length > MAX_RESULT_CHARS ? `${text.slice(0, MAX_RESULT_CHARS)}… (cut)` : text;
}
