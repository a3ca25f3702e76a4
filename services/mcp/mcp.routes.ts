// HTTP routes of the mcp module outside /api (lib/module-routes.ts). The platform served as an MCP server (`/mcp`)
// is added here by the agent work; for now, none.
import type { ModuleRoute } from "../../lib/module-routes";

const routes: ModuleRoute[] = [];
export default routes;
