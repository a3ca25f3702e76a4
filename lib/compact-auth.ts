// A user's or API key's permissions are derived from its role (lib/authz.ts permissionsFor), on every node alike,
// from the same manifests. They are not sent between nodes: `meta.auth.permissions` (about 40 names, 0.7 KB) travelled
// in every request, response and event packet, where the JSON, the cipher and the socket paid for it each way. The
// sender drops them and the receiver derives them again before anything reads the packet. A service principal's
// permissions are part of what its token proves (lib/authz.ts), so they travel as they are.
import type { Middleware } from "moleculer";
import type { AuthInfo } from "./permissions";
import { permissionsFor } from "./authz";

const CARRIES_META = new Set(["REQ", "RES", "EVENT"]);

interface Packet {
	type: string;
	payload?: { meta?: { auth?: AuthInfo } & Record<string, unknown> };
}

export function CompactAuthMeta(): Middleware {
	return {
		name: "CompactAuthMeta",
		// Transit calls its wrapped methods on itself: `this` is passed on.
		transitPublish(next: (this: unknown, packet: Packet) => Promise<unknown>) {
			return function (this: unknown, packet: Packet) {
				const meta = packet.payload?.meta;
				const auth = meta?.auth;
				if (CARRIES_META.has(packet.type) && auth && auth.kind !== "service" && auth.permissions) {
					// The context's own meta stays whole: the packet gets a copy without the derived list.
					const { permissions: _derived, ...rest } = auth;
					packet.payload!.meta = { ...meta, auth: rest as AuthInfo };
				}
				return next.call(this, packet);
			};
		},
		transitMessageHandler(next: (this: unknown, cmd: string, packet: Packet) => unknown) {
			return function (this: unknown, cmd: string, packet: Packet) {
				const auth = packet.payload?.meta?.auth;
				if (auth && auth.kind !== "service" && !auth.permissions)
					auth.permissions = auth.role ? permissionsFor(auth.role) : [];
				return next.call(this, cmd, packet);
			};
		}
	} as unknown as Middleware;
}
