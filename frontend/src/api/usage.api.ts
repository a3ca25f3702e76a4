// usage module: /api/usage, in the organization chosen in the switcher. Types come from the generated
// schema.d.ts (npm run api-types), whose UsageItem is the row DbMixin declares.
import { crud, type Schema } from "@/lib/api";

export type UsageItem = Schema<"UsageItem">;
export type UsageItemInput = { name?: string; description?: string };

export const usageApi = crud<UsageItem, UsageItemInput>("/usage");
