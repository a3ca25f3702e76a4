// workflow module: /api/workflow/definitions, in the organization chosen in the switcher. Types come from the
// generated schema.d.ts (npm run api-types).
import { crud, type Schema } from "@/lib/api";

export type WorkflowItem = Schema<"WorkflowDefinition">;
export type WorkflowItemInput = { name?: string; description?: string };

export const workflowApi = crud<WorkflowItem, WorkflowItemInput>("/workflow/definitions");
