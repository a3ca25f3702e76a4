// What the mcp specs and the bench share: the services of an in-process mcp stack and the tiny stdio server.
import path from "path";
import { ROOT } from "../helpers/broker";

export const MCP_STACK = [
	"services/auth/auth.service.ts",
	"services/auth/teams.service.ts",
	"services/secrets/secrets.service.ts",
	"services/mcp/mcp.service.ts",
	"services/mcp/servers.service.ts",
	"services/mcp/tools.service.ts",
	"services/mcp/executions.service.ts"
];
export const BIN = path.join(ROOT, "node_modules/.bin");
export const TINY = path.join(ROOT, "test/mcp/fixtures/tiny-server.cjs");
export const TINY_SH = path.join(ROOT, "test/mcp/fixtures/tiny-server.sh");
