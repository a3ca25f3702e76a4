// knowledge module: /api/knowledge, in the organization chosen in the switcher. Types come from the generated
// schema.d.ts (npm run api-types), whose KnowledgeItem is the row DbMixin declares.
import { crud, type Schema } from "@/lib/api";

export type KnowledgeItem = Schema<"KnowledgeItem">;
export type KnowledgeItemInput = { name?: string; description?: string };

export const knowledgeApi = crud<KnowledgeItem, KnowledgeItemInput>("/knowledge");
