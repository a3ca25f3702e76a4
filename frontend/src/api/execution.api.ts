// execution module: /api/execution, in the organization chosen in the switcher. Types come from the generated
// schema.d.ts (npm run api-types), whose ExecutionItem is the row DbMixin declares.
import { crud, type Schema } from "@/lib/api";

export type ExecutionItem = Schema<"ExecutionItem">;
export type ExecutionItemInput = { name?: string; description?: string };

export const executionApi = crud<ExecutionItem, ExecutionItemInput>("/execution");
