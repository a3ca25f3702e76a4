// What the notifications module's actions answer (their `response`): OpenAPI and the UI's generated types.
import { listOf, named } from "../../lib/response";

export const Notification = named("Notification", {
	id: "uuid",
	organization_id: "uuid",
	event_type: "string",
	critical: "boolean",
	title: "string",
	body: "string",
	data: "object", // the (latest) event
	count: "number|integer", // events coalesced into it
	read_at: "date|nullable",
	created_at: "date",
	updated_at: "date"
});

export const UnreadCount = named("NotificationsUnreadCount", { count: "number|integer" });
export const MarkedRead = named("NotificationsMarkedRead", { count: "number|integer" });

export const Delivery = named("NotificationDelivery", {
	id: "uuid",
	notification_id: "uuid|nullable",
	channel_id: "uuid|nullable",
	channel: { type: "enum", values: ["in_app", "email", "webhook"] },
	user_id: "uuid|nullable",
	event_id: "uuid",
	event_type: "string",
	count: "number|integer",
	status: { type: "enum", values: ["pending", "retrying", "sent", "failed"] },
	attempts: "number|integer",
	next_attempt_at: "date",
	last_error: "string|nullable",
	sent_at: "date|nullable",
	created_at: "date",
	updated_at: "date"
});
export const Deliveries = listOf(Delivery);
export const DELIVERY_COLUMNS = [
	"id",
	"notification_id",
	"channel_id",
	"channel",
	"user_id",
	"event_id",
	"event_type",
	"count",
	"status",
	"attempts",
	"next_attempt_at",
	"last_error",
	"sent_at",
	"created_at",
	"updated_at"
]
	.map(c => `d.${c}`)
	.join(", ");

const Matrix = named("NotificationEventType", {
	type: "string",
	label: "string",
	critical: "boolean",
	coalesces: "boolean",
	in_app: "boolean", // the caller's choice, else the default
	email: "boolean",
	default_in_app: "boolean",
	default_email: "boolean"
});
const Quiet = named("NotificationQuietHours", { timeZone: "string", start: "string", end: "string" });
export const Preferences = named("NotificationPreferences", {
	eventTypes: listOf(Matrix),
	quietHours: { ...Quiet, nullable: true }
});

export const TestResult = named("NotificationChannelTest", { ok: "boolean", error: "string|optional" });
