// One MCP request over Streamable HTTP (POST /mcp): a fresh server and transport for it, both closed with the response.
import type { StreamableHTTPServerTransport as Transport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { formatError } from "../../gateway/errors";
import type { platformServer as PlatformServer } from "./platform-server";

// The MCP SDK's server and its schemas (zod) are loaded by the first MCP request: about 9 MB of heap and 30 MB of
// RSS every gateway (and the embedded node) otherwise carries from start.
let sdk: { Transport: typeof Transport; platformServer: typeof PlatformServer } | undefined;
const loadSdk = () =>
	(sdk ??= {
		Transport: require("@modelcontextprotocol/sdk/server/streamableHttp.js").StreamableHTTPServerTransport,
		platformServer: require("./platform-server").platformServer
	});

// A refusal as MCP clients read it: a JSON-RPC error with no id, in the HTTP status.
export function refuseMcp(res: any, status: number, message: string, headers: Record<string, string> = {}) {
	if (res.headersSent) return res.end();
	res.statusCode = status;
	for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
	if (status === 405) res.setHeader("Allow", "POST");
	res.setHeader("Content-Type", "application/json; charset=utf-8");
	res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

export const UNAUTHENTICATED = { "WWW-Authenticate": 'Bearer realm="coder-ide"' };

export async function handleMcpPost(req: any, res: any) {
	const ctx = req.$ctx;
	if (!ctx.meta.auth)
		return refuseMcp(
			res,
			401,
			"authentication required: send a platform API key as a bearer token",
			UNAUTHENTICATED
		);
	const { Transport, platformServer } = loadSdk();
	const server = platformServer(ctx);
	const transport = new Transport({ sessionIdGenerator: undefined, enableJsonResponse: true });
	res.on("close", () => {
		void transport.close();
		void server.close();
	});
	try {
		await server.connect(transport);
		await transport.handleRequest(req, res, req.body);
	} catch (err) {
		const { status, body } = formatError(err);
		refuseMcp(res, status, body.error.message);
	}
}
