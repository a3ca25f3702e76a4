// One rule for events: durable domain events are typed per module (services/<module>/<module>.events.ts, augmenting
// ChannelEvents) and go through the outbox; "tell every replica" broadcasts are typed the same way (BroadcastEvents)
// and sent with lib/events/broadcast.ts. The channels that exist are the ones the manifests publish.
import fs from "fs";
import path from "path";
import { ServiceBroker, type Context } from "moleculer";
import { broadcast } from "../../lib/events/broadcast";
import { makeEvent } from "../../lib/events/outbox";
import type { ChannelName } from "../../lib/events/types";
import { channelsOf, loadManifests, SERVICES_DIR } from "../../lib/module";
import type { Publish } from "../../mixins/events.mixin";

// Compile-time checks, never run: tsc (test/platform/typecheck.spec.ts) fails on an unused @ts-expect-error, so each
// marked line must stay an error.
export function typeChecks(broker: ServiceBroker, publish: Publish) {
	publish("ai.completion.failed", { requestId: "r", model: "m", error: "e" });
	// @ts-expect-error an event no module declares
	publish("ai.completion.exploded", { requestId: "r", model: "m", error: "e" });
	// @ts-expect-error a field of the wrong type
	publish("ai.completion.failed", { requestId: "r", model: "m", error: 1 });
	// @ts-expect-error a missing field
	makeEvent("ai.completion.failed", { requestId: "r", model: "m" });
	// @ts-expect-error a field the event does not have
	makeEvent("ai.completion.failed", { requestId: "r", model: "m", error: "e", extra: 1 });
	const channels: ChannelName[] = ["ai.events"];
	// @ts-expect-error a channel no events file declares
	channels.push("nope.events");
	broadcast(broker, "ai.cancel", { requestId: "r" });
	broadcast(broker, "cache.clean.teams");
	// @ts-expect-error a broadcast no module declares
	broadcast(broker, "ai.cancelled", { requestId: "r" });
	// @ts-expect-error a payload of the wrong shape
	broadcast(broker, "auth.session.revoked", { session: "s" });
	// @ts-expect-error a declared payload left out
	broadcast(broker, "secrets.changed");
}

describe("typed events", () => {
	test("the channels are the ones the manifests publish, each typed in its module's events file", () => {
		const manifests = loadManifests(SERVICES_DIR);
		const channels = channelsOf(manifests);
		expect(channels).toContain("ai.events");
		for (const m of manifests)
			for (const channel of m.publishes) {
				const file = path.join(SERVICES_DIR, m.name, `${m.name}.events.ts`);
				expect(fs.existsSync(file) && fs.readFileSync(file, "utf8")).toContain(`"${channel}": `);
			}
		// lib/ lists no channel of its own: a new module edits no central file.
		const lib = fs.readFileSync(path.join(__dirname, "../../lib/events/types.ts"), "utf8");
		expect(lib).toMatch(/^export interface ChannelEvents \{\}$/m);
	});

	test("a broadcast reaches every node's handler with its payload, and a payload-less one without", async () => {
		const broker = new ServiceBroker({ logger: false });
		const heard: unknown[] = [];
		broker.createService({
			name: "listener",
			events: {
				"ai.cancel": (ctx: Context) => void heard.push(ctx.params),
				"cache.clean.listener": (ctx: Context) => void heard.push(ctx.params)
			}
		});
		await broker.start();
		try {
			await broadcast(broker, "ai.cancel", { requestId: "r1" });
			await broadcast(broker, "cache.clean.listener");
			expect(heard).toEqual([{ requestId: "r1" }, null]);
		} finally {
			await broker.stop();
		}
	});
});
