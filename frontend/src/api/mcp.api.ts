// mcp module: /api/mcp, in the organization chosen in the switcher. Types come from the generated
// schema.d.ts (npm run api-types), whose McpItem is the row DbMixin declares.
import { crud, type Schema } from "@/lib/api";

export type McpItem = Schema<"McpItem">;
export type McpItemInput = { name?: string; description?: string };

export const mcpApi = crud<McpItem, McpItemInput>("/mcp");
