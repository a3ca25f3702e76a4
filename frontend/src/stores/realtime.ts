// realtime: the socket.io connection for the signed-in user in the current organization. The server
// authenticates the handshake with the access token, joins rooms user:<id> and org:<id>, says "ready", answers
// `call` with { data } or { error }, and pushes events by name. Modules use `call` and `on`; pushed
// `notification` events become toasts here.
import { defineStore } from "pinia";
import { ref, watch } from "vue";
import { io, type Socket } from "socket.io-client";
import { ApiError, refreshSession, toApiError } from "@/lib/api";
import { useAuthStore } from "./auth";
import { useToastsStore, type ToastKind } from "./toasts";

export type RealtimeStatus = "offline" | "connecting" | "live";

type Handler = (payload: any) => void;

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

	function disconnect() {
		clearTimeout(retryTimer);
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
		s.onAny((event: string, payload: unknown) => handlers.get(event)?.forEach(h => h(payload)));
	}

	function scheduleRetry(s: Socket) {
		clearTimeout(retryTimer);
		retryTimer = setTimeout(() => socket === s && !s.connected && s.connect(), RETRY_MS);
	}

	// Payloads so far are { title?, message? | body? | text?, level? }; a bare string is the message itself.
	function showNotification(payload: any) {
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
		if (!s || !s.connected) return Promise.reject(new ApiError(0, { code: "OFFLINE", message: "The live connection is offline." }));
		return new Promise((resolve, reject) => {
			s.timeout(timeoutMs).emit("call", { action, params }, (timeout: Error | null, res: { data?: T; error?: any; status?: number }) => {
				if (timeout) reject(new ApiError(0, { code: "TIMEOUT", message: `${action} did not answer in time.` }));
				else if (res?.error) reject(toApiError(res.status ?? 0, res.error));
				else resolve(res?.data as T);
			});
		});
	}

	// Subscribes to a pushed event; returns the unsubscribe function.
	function on(event: string, handler: Handler): () => void {
		if (!handlers.has(event)) handlers.set(event, new Set());
		handlers.get(event)!.add(handler);
		return () => handlers.get(event)?.delete(handler);
	}

	// A new token (refresh), another organization, or signing in/out: the connection follows.
	watch(
		() => [auth.accessToken, auth.organizationId] as const,
		([token, org]) => (token && org ? connect() : disconnect()),
		{ immediate: true }
	);

	return { status, lastError, call, on };
});
