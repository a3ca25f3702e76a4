// HTTP routes of the mcp module outside /api (lib/module-routes.ts): `/mcp`, the platform served as an MCP server
// over Streamable HTTP (services/mcp/server/), authenticated like /v1 with a platform API key (Authorization: Bearer
// cide_… or X-API-Key) or an access token. Stateless: POST only; the GET stream and DELETE of sessions are 405.
import type { ModuleRoute, ModuleRouteThis } from "../../lib/module-routes";
import { formatError } from "../gateway/errors";
import { handleMcpPost, refuseMcp, UNAUTHENTICATED } from "./server/http";

const routes: ModuleRoute[] = [
	{
		path: "/mcp",
		authentication: true,
		mappingPolicy: "restrict",
		aliases: {
			"POST /"(this: ModuleRouteThis, req: any, res: any) {
				return handleMcpPost(req, res);
			},
			"GET /": (req: any, res: any) => refuseMcp(res, 405, "this server is stateless: no GET stream, POST only"),
			"DELETE /": (req: any, res: any) => refuseMcp(res, 405, "this server is stateless: there are no sessions")
		},
		// A refused credential (unknown, revoked or expired key) in MCP's shape: JSON-RPC, and 401 with its challenge.
		onError(req: any, res: any, err: unknown) {
			const { status, body } = formatError(err);
			refuseMcp(res, status, body.error.message, status === 401 ? UNAUTHENTICATED : {});
		}
	}
];
export default routes;
