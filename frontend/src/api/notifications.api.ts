// notifications module: /api/notifications, in the organization chosen in the switcher. Types come from the generated
// schema.d.ts (npm run api-types), whose NotificationsItem is the row DbMixin declares.
import { crud, type Schema } from "@/lib/api";

export type NotificationsItem = Schema<"NotificationsItem">;
export type NotificationsItemInput = { name?: string; description?: string };

export const notificationsApi = crud<NotificationsItem, NotificationsItemInput>("/notifications");
