// The channel kinds that leave the platform, by name (in-app is the inbox itself: routing.ts).
import { emailSender } from "./email";
import { webhookSender } from "./webhook";
import type { ChannelSender } from "./types";

export const SENDERS: Record<"email" | "webhook", ChannelSender<any>> = {
	email: emailSender,
	webhook: webhookSender
};
export type { ChannelSender, OutboundMessage, SendContext, SecretName } from "./types";
