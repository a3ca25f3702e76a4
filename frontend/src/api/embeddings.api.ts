// embeddings module: /api/embeddings, in the organization chosen in the switcher. Types come from the generated
// schema.d.ts (npm run api-types).
import { crud, type Schema } from "@/lib/api";

export type EmbCollection = Schema<"EmbCollection">;
export type EmbCollectionInput = { name?: string; description?: string; modelId?: string };

export const embeddingsApi = crud<EmbCollection, EmbCollectionInput>("/embeddings/collections");
