// The notifications module's durable events (channel notifications.events). It never consumes them itself
// (consumesAll leaves a module's own channel out), so a failing channel cannot notify about itself in a loop.
import type { E } from "../../lib/events/types";

export type NotificationsEvent = E<
	"notifications.delivery.failed",
	{
		organizationId: string;
		deliveryId: string;
		channel: "email" | "webhook";
		channelId: string | null;
		eventType: string;
		attempts: number;
	}
>;

declare module "../../lib/events/types" {
	interface ChannelEvents {
		"notifications.events": NotificationsEvent;
	}
}
