// A notification channel that leaves the platform (e-mail, webhook): one file per kind, resolved by name in
// index.ts, as Moleculer resolves transporters. Each checks its configuration when it is saved and sends one
// rendered message; credentials come from the secrets module at send time and are never kept here.
import type { HostPolicy } from "../../../lib/egress";
import type { Wording } from "../render";

export interface SecretName {
	environment: string;
	name: string;
}

export interface OutboundMessage {
	deliveryId: string; // the webhook-id: stable across retries, so a receiver can de-duplicate
	event: Record<string, unknown> & { type: string; id: string; time?: string };
	count: number;
	wording: Wording;
	to?: { email: string; name: string }; // e-mail: the recipient
}

export interface SendContext {
	secret(ref: SecretName): Promise<string>;
	policy: HostPolicy;
}

export interface ChannelSender<C> {
	kind: "email" | "webhook";
	// The stored configuration, validated (a 422 naming the field); secrets by name only.
	check(config: unknown): C;
	// The secrets it names, for the grant to the notifications service.
	secretsOf(config: C): SecretName[];
	send(config: C, message: OutboundMessage, ctx: SendContext): Promise<void>;
}
