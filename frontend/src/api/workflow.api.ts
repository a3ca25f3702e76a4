// workflow module: /api/workflow, in the organization chosen in the switcher. Types come from the generated
// schema.d.ts (npm run api-types), whose WorkflowItem is the row DbMixin declares.
import { crud, type Schema } from "@/lib/api";

export type WorkflowItem = Schema<"WorkflowItem">;
export type WorkflowItemInput = { name?: string; description?: string };

export const workflowApi = crud<WorkflowItem, WorkflowItemInput>("/workflow");
