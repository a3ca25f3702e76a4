// notifications module: /api/notifications (the caller's inbox and preferences) and the organization's channels,
// templates and deliveries. Types come from the generated schema.d.ts (npm run api-types).
import { api, crud, type Page, type Schema } from "@/lib/api";

export type Notification = Schema<"Notification">;
export type NotificationPreferences = Schema<"NotificationPreferences">;
export type NotificationEventType = Schema<"NotificationEventType">;
export type QuietHours = Schema<"NotificationQuietHours">;
export type NotificationChannel = Schema<"NotificationsChannel">;
export type NotificationDelivery = Schema<"NotificationDelivery">;
export type NotificationTemplate = Schema<"NotificationsTemplate">;
export type NotificationTemplateDefault = Schema<"NotificationTemplateDefault">;
export type NotificationPreview = Schema<"NotificationPreview">;
export type UserChannel = "in_app" | "email";
export type ChannelKind = UserChannel | "webhook";
export interface TemplateInput {
	event_type?: string;
	channel?: ChannelKind;
	subject?: string;
	body?: string;
}
export interface ChannelInput {
	name?: string;
	kind?: "email" | "webhook";
	config?: Record<string, unknown>;
	event_types?: string[];
	enabled?: boolean;
}
export interface Choice {
	eventType: string;
	channel: UserChannel;
	enabled: boolean;
}

export const notificationsApi = {
	inbox: (query: { unread?: boolean; page?: number; pageSize?: number } = {}) =>
		api.get<Page<Notification>>("/notifications", query),
	unreadCount: () => api.get<{ count: number }>("/notifications/unread-count"),
	markRead: (id: string) => api.post<Notification>(`/notifications/${encodeURIComponent(id)}/read`),
	markAllRead: () => api.post<{ count: number }>("/notifications/read-all"),
	preferences: () => api.get<NotificationPreferences>("/notifications/preferences"),
	savePreferences: (body: { preferences?: Choice[]; quietHours?: QuietHours | null }) =>
		api.put<NotificationPreferences>("/notifications/preferences", body),
	channels: crud<NotificationChannel, ChannelInput>("/notifications/channels"),
	testChannel: (id: string) =>
		api.post<{ ok: boolean; error?: string }>(`/notifications/channels/${encodeURIComponent(id)}/test`),
	templates: crud<NotificationTemplate, TemplateInput>("/notifications/templates"),
	templateDefaults: () => api.get<NotificationTemplateDefault[]>("/notifications/templates/defaults"),
	previewTemplate: (body: { event_type: string; subject?: string; body: string; sample?: object; count?: number }) =>
		api.post<NotificationPreview>("/notifications/templates/preview", body),
	deliveries: (query: { status?: string; channel?: string; page?: number } = {}) =>
		api.get<Page<NotificationDelivery>>("/notifications/deliveries", query)
};
