// The platform as an MCP server: its own tools (../platform-tools.ts) for one request's caller. Stateless, as the
// Streamable HTTP transport allows: a server per request, no session id, nothing kept between requests; any gateway
// replica answers any request. Listing needs an authenticated caller; calling needs `mcp:write` (calling tools, as
// for any MCP server on the platform) and then whatever the tool's action needs, checked by the action itself.
import type { Context } from "moleculer";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
	CallToolRequestSchema,
	ErrorCode,
	ListToolsRequestSchema,
	McpError,
	type CallToolResult
} from "@modelcontextprotocol/sdk/types.js";
import { authOf, holds } from "../../../lib/authz";
import { PLATFORM_TOOLS, platformTool } from "../platform-tools";

export const SERVER_INFO = { name: "coder-ide-platform", version: "1.0.0" };

const failure = (text: string): CallToolResult => ({ isError: true, content: [{ type: "text", text }] });

export function platformServer(ctx: Context): Server {
	const server = new Server(SERVER_INFO, { capabilities: { tools: {} } });
	server.setRequestHandler(ListToolsRequestSchema, async () => ({
		tools: PLATFORM_TOOLS.map(t => ({
			name: t.name,
			title: t.title,
			description: t.description,
			inputSchema: t.input_schema,
			annotations: t.annotations
		}))
	}));
	server.setRequestHandler(CallToolRequestSchema, async req => {
		const tool = platformTool(req.params.name);
		if (!tool) throw new McpError(ErrorCode.InvalidParams, `no tool named ${req.params.name}`);
		if (!holds(authOf(ctx), "mcp:write"))
			return failure("403 forbidden: calling tools requires permission mcp:write");
		try {
			const result = (await tool.run(ctx, req.params.arguments ?? {})) as Record<string, unknown>;
			return { content: [{ type: "text", text: JSON.stringify(result) }], structuredContent: result };
		} catch (err) {
			// The action's own refusal (403, 422 naming the field, 503): told to the client as a tool error.
			const e = err as { code?: number; message?: string };
			return failure(`${e.code ?? 500} ${e.message ?? "failed"}`);
		}
	});
	return server;
}
