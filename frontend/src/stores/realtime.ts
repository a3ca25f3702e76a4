// realtime: the socket.io connection for the signed-in user in the current organization. The server
// authenticates the handshake with the access token, joins rooms user:<id> and org:<id>, says "ready", answers
// `call` with { data } or { error }, streams what an action returns (`stream` → `stream:data`… then `stream:end` or
// `stream:error`; `cancel` stops it), and pushes events by name; `changed` (another member changed a list this
// user may read) becomes a toast here and reaches the stores that show that list (lib/use-crud.ts useLive). Modules use `call`, `stream` and `on`; pushed
// `notification` events become toasts here. It is the one socket of the app.
import { defineStore } from "pinia";
import { ref, watch } from "vue";
import { io, type Socket } from "socket.io-client";
import { accessTokenExpiring, ApiError, refreshSession, toApiError } from "@/lib/api";
import { useAuthStore } from "./auth";
import { useToastsStore, type ToastKind } from "./toasts";

export type RealtimeStatus = "offline" | "connecting" | "live";

// What the server says when another member changed something this user may see (lib/live.ts): never a value.
export interface ChangeNotice {
	entity: string;
	noun: string;
	id: string;
	action: "created" | "updated" | "removed";
	label?: string;
	actor?: { id: string; name: string };
}

type Handler = (payload: any) => void;

// What a stream started with `stream` reports: its items, then exactly one of end or error.
export interface StreamHandlers {
	// The id the call runs under on the server (its logs name it), told before the action answers.
	start?: (requestId: string) => void;
	data: (item: any) => void;
	end: () => void;
	error: (err: ApiError) => void;
}

const RETRY_MS = 10_000;

export const useRealtimeStore = defineStore("realtime", () => {
	const auth = useAuthStore();
	const toasts = useToastsStore();

	const status = ref<RealtimeStatus>("offline");
	const lastError = ref<string | null>(null);
	// Subscriptions outlive a single connection: switching organization or token reconnects underneath them.
	const handlers = new Map<string, Set<Handler>>();
	let socket: Socket | null = null;
	let retryTimer: ReturnType<typeof setTimeout> | undefined;
	// Running streams by id; a connection that goes away ends them all.
	const streams = new Map<string, StreamHandlers>();
	let nextStream = 1;

	function endStreams() {
		const lost = [...streams.values()];
		streams.clear();
		for (const h of lost)
			h.error(new ApiError(0, { code: "DISCONNECTED", message: "The live connection was lost." }));
	}

	function disconnect() {
		clearTimeout(retryTimer);
		endStreams();
		if (socket) {
			socket.removeAllListeners();
			socket.disconnect();
			socket = null;
		}
		status.value = "offline";
	}

	function connect() {
		disconnect();
		const token = auth.accessToken;
		const organizationId = auth.organizationId;
		if (!token || !organizationId) return;
		status.value = "connecting";
		// An expired token would only be refused: renew it first, and the watcher below connects with the new one.
		if (accessTokenExpiring()) {
			void refreshSession(token).then(ok => {
				if (ok || auth.accessToken !== token) return;
				// Not renewed and the session kept: the server is out of reach. Try again later.
				status.value = "offline";
				retryTimer = setTimeout(() => auth.accessToken === token && connect(), RETRY_MS);
			});
			return;
		}
		const s = io(window.location.origin, {
			path: "/socket.io",
			transports: ["websocket"],
			auth: { token, organizationId }
		});
		socket = s;

		s.on("ready", (info: { userId?: string; organizationId?: string }) => {
			if (info?.organizationId && info.organizationId !== organizationId) return;
			lastError.value = null;
			status.value = "live";
		});
		s.on("disconnect", async reason => {
			status.value = "offline";
			endStreams();
			// The server closes a socket whose identity stopped being true: the token expired (a sleeping tab missed
			// its renewal), the session ended, or the membership changed. Renew once; the watcher then reconnects,
			// or the session is over and the watcher stops.
			if (reason === "io server disconnect" && !(await refreshSession(token))) scheduleRetry(s);
		});
		s.on("connect_error", async (err: Error & { data?: { code?: string } }) => {
			status.value = "offline";
			lastError.value = err.message;
			// Transport failures are retried by socket.io itself; a refusal by the server is not.
			if (s.active) return;
			const code = err.data?.code;
			if (code === "UNAUTHORIZED" || /token|session|auth/i.test(err.message)) {
				// A new token (or the end of the session) reaches the watcher below, which reconnects or stops.
				if (await refreshSession(token)) return;
			}
			if (code === "FORBIDDEN") return;
			scheduleRetry(s);
		});
		s.on("notification", (payload: any) => showNotification(payload));
		s.on("changed", (n: ChangeNotice) => {
			if (!n?.entity) return;
			// The user's own change was answered where they made it; another member's is said here, once.
			if (n.actor && n.actor.id !== auth.user?.id)
				toasts.show("info", [n.actor.name, n.action, n.noun, n.label].filter(Boolean).join(" "));
			handlers.get(`changed:${n.entity}`)?.forEach(h => h(n));
		});
		s.on("stream:start", (m: { id: string; requestId: string }) => streams.get(m?.id)?.start?.(m.requestId));
		s.on("stream:data", (m: { id: string; data: unknown }) => streams.get(m?.id)?.data(m.data));
		s.on("stream:end", (m: { id: string }) => {
			const h = streams.get(m?.id);
			streams.delete(m?.id);
			h?.end();
		});
		s.on("stream:error", (m: { id: string; error: any; status?: number }) => {
			const h = streams.get(m?.id);
			streams.delete(m?.id);
			h?.error(toApiError(m.status ?? 0, m.error));
		});
		s.onAny((event: string, payload: unknown) => handlers.get(event)?.forEach(h => h(payload)));
	}

	function scheduleRetry(s: Socket) {
		clearTimeout(retryTimer);
		retryTimer = setTimeout(() => socket === s && !s.connected && s.connect(), RETRY_MS);
	}

	// Payloads so far are { title?, message? | body? | text?, level? }; a bare string is the message itself.
	function showNotification(payload: any) {
		// The notifications module's push (the bell's store keeps the inbox): { organizationId, notification, unread }.
		if (payload?.notification) {
			if (payload.organizationId !== auth.organizationId) return;
			const n = payload.notification;
			toasts.show(n.critical ? "warning" : "info", String(n.title), n.body ? String(n.body) : undefined);
			return;
		}
		const p = typeof payload === "string" ? { text: payload } : (payload ?? {});
		const level = String(p.level ?? p.severity ?? "info");
		const kind: ToastKind = (["success", "warning", "error"] as const).find(k => k === level) ?? "info";
		const text = p.message ?? p.body ?? p.text;
		const title = p.title ?? p.subject;
		if (title) toasts.show(kind, String(title), text ? String(text) : undefined);
		else toasts.show(kind, text ? String(text) : "Notification");
	}

	// Calls an action over the live connection: resolves with `data`, rejects with an ApiError.
	function call<T = unknown>(action: string, params: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<T> {
		const s = socket;
		if (!s || !s.connected)
			return Promise.reject(new ApiError(0, { code: "OFFLINE", message: "The live connection is offline." }));
		return new Promise((resolve, reject) => {
			s.timeout(timeoutMs).emit(
				"call",
				{ action, params },
				(timeout: Error | null, res: { data?: T; error?: any; status?: number }) => {
					if (timeout)
						reject(new ApiError(0, { code: "TIMEOUT", message: `${action} did not answer in time.` }));
					else if (res?.error) reject(toApiError(res.status ?? 0, res.error));
					else resolve(res?.data as T);
				}
			);
		});
	}

	// The connection once it is live (it may be reconnecting after a token renewal), or an OFFLINE error.
	function live(timeoutMs = 10_000): Promise<Socket> {
		if (socket?.connected && status.value === "live") return Promise.resolve(socket);
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				stop();
				reject(new ApiError(0, { code: "OFFLINE", message: "The live connection is offline." }));
			}, timeoutMs);
			const stop = watch(status, st => {
				if (st !== "live" || !socket) return;
				clearTimeout(timer);
				stop();
				resolve(socket);
			});
		});
	}

	// Streams what an action returns over the live connection. The returned function cancels it: the server stops
	// the call wherever it runs, even before its first item, and no handler is called after.
	function stream(
		action: string,
		params: Record<string, unknown>,
		h: StreamHandlers,
		ackTimeoutMs = 5 * 60_000
	): () => void {
		const id = `s${nextStream++}`;
		let cancelled = false;
		let s: Socket | null = null;
		void live().then(
			ready => {
				if (cancelled) return;
				s = ready;
				streams.set(id, h);
				ready
					.timeout(ackTimeoutMs)
					.emit(
						"stream",
						{ id, action, params },
						(timeout: Error | null, res: { error?: any; status?: number }) => {
							if (!streams.has(id)) return;
							if (timeout || res?.error) {
								streams.delete(id);
								h.error(
									timeout
										? new ApiError(0, {
												code: "TIMEOUT",
												message: `${action} did not answer in time.`
											})
										: toApiError(res.status ?? 0, res.error)
								);
							}
						}
					);
			},
			(err: ApiError) => !cancelled && h.error(err)
		);
		return () => {
			cancelled = true;
			if (streams.delete(id) && s?.connected) s.emit("cancel", { id });
		};
	}

	// Subscribes to a pushed event; returns the unsubscribe function.
	function on(event: string, handler: Handler): () => void {
		if (!handlers.has(event)) handlers.set(event, new Set());
		handlers.get(event)!.add(handler);
		return () => handlers.get(event)?.delete(handler);
	}

	// Subscribes to live notices about one kind of entity (a service name: "auth-teams", "ai-providers").
	const onChange = (entity: string, handler: (n: ChangeNotice) => void) => on(`changed:${entity}`, handler);

	// A new token (refresh), another organization, or signing in/out: the connection follows.
	watch(
		() => [auth.accessToken, auth.organizationId] as const,
		([token, org]) => (token && org ? connect() : disconnect()),
		{ immediate: true }
	);

	return { status, lastError, call, stream, on, onChange };
});
