// The machinery of typed events. Each module declares its own in services/<module>/<module>.events.ts: the union of
// its durable events, registered under its channel by augmenting ChannelEvents, and the names and payloads of its
// broadcasts (tell every replica to drop or act) by augmenting BroadcastEvents:
//   export type AIEvent = E<"ai.completion.started", { requestId: string }> | …;
//   declare module "../../lib/events/types" {
//     interface ChannelEvents { "ai.events": AIEvent }
//     interface BroadcastEvents { "ai.config.changed": { organizationId: string } }
//   }
// The channels that exist at run time are the ones the manifests publish (lib/module.ts).

// Every event carries an id (consumers de-duplicate on it) and the time it happened; `organizationId` routes it to
// the right tenant.
export interface EventMeta {
	id: string;
	time: string;
	organizationId?: string;
}

// One event type: `E<"ai.completion.started", { requestId: string }>`. Modules build their unions with it.
export type E<T extends string, D = unknown> = { type: T } & D & EventMeta;

// Channel name -> the union of the events it carries. Filled by the modules' events files.
export interface ChannelEvents {}

// Broadcast name -> its payload. Filled by the modules' events files (lib/events/broadcast.ts sends them).
export interface BroadcastEvents {}

export type ChannelName = keyof ChannelEvents & string;
export type PlatformEvent = ChannelEvents[ChannelName];
export type EventType = PlatformEvent["type"];
// The event types one channel carries: `EventTypeOf<"ai.events">`.
export type EventTypeOf<C extends ChannelName> = ChannelEvents[C]["type"];
// The fields a publisher supplies for one event type (id and time are added on publish).
export type EventData<T extends EventType> = Omit<Extract<PlatformEvent, { type: T }>, "type" | "id" | "time"> & {
	organizationId?: string;
};

// "embedding.job.failed" -> "embedding.events"
export function channelOf(type: string): string {
	return `${type.split(".")[0]}.events`;
}
