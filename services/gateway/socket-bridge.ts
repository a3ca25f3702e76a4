// The socket.io bridge on the gateway's HTTP server. A socket authenticates with the same credentials as REST,
// joins `user:<id>` and `org:<id>`, may call published actions (authorized exactly like REST), and receives what
// any service pushes with the broadcast event `gateway.push` — every gateway replica relays to its own sockets.
import crypto from "crypto";
import type { Server as HttpServer } from "http";
import { Server, Socket } from "socket.io";
import type { ServiceBroker } from "moleculer";
import type { RequestLimits } from "../../lib/rate-limit";
import { jsonTooDeepError, valueTooDeep } from "./body";
import { formatError } from "./errors";
import { ndjson } from "./ndjson";
import { broadcast } from "../../lib/events/broadcast";

export interface SocketIdentity {
	userId: string;
	organizationId?: string;
	sessionId?: string;
	apiKeyId?: string;
	expiresAt?: number;
	[k: string]: unknown;
}

export interface BridgeOptions {
	resolve: (creds: { token?: string; apiKey?: string; organizationId?: string }) => Promise<SocketIdentity>;
	// The gateway's per-IP and per-user budgets (the same counters as REST) and the cap on a user's open sockets.
	limits: RequestLimits;
	corsOrigins: string[];
	callsPerSecond: number;
	maxInFlight: number;
	timeout: number;
}

const ROOM = /^(org|user):[0-9a-f-]{36}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// Token bucket per socket: bursts up to twice the rate, then the rate.
class Bucket {
	private tokens: number;
	private last = Date.now();
	constructor(private rate: number) {
		this.tokens = rate * 2;
	}
	take(): boolean {
		const now = Date.now();
		this.tokens = Math.min(this.rate * 2, this.tokens + ((now - this.last) / 1000) * this.rate);
		this.last = now;
		if (this.tokens < 1) return false;
		this.tokens--;
		return true;
	}
}

// A refusal in the platform's error shape, with its status (and, for 429, when to retry).
function refusal(err: any) {
	const { status, body } = formatError(err);
	return { ...body, status, ...(err?.data?.retryAfter ? { retryAfter: err.data.retryAfter } : {}) };
}

export class SocketBridge {
	readonly io: Server;
	private renewer: NodeJS.Timeout;

	constructor(
		private broker: ServiceBroker,
		server: HttpServer,
		private opts: BridgeOptions
	) {
		this.io = new Server(server, {
			path: "/socket.io",
			serveClient: false,
			maxHttpBufferSize: 1e6,
			cors: opts.corsOrigins.length ? { origin: opts.corsOrigins, credentials: true } : undefined
		});
		this.io.use((socket, next) => this.authenticate(socket).then(() => next(), err => next(this.handshakeError(err))));
		this.io.on("connection", socket => this.onConnection(socket));
		// Open sockets keep their places under the per-user cap; a replica that dies stops renewing them.
		this.renewer = setInterval(() => this.renewLeases(), Math.max(1000, opts.limits.socketLeaseMs / 3));
		this.renewer.unref();
	}

	// A handshake is a request like any other for the per-IP budget, counted before credentials are checked.
	private async authenticate(socket: Socket) {
		await this.opts.limits.ip(socket.handshake.address);
		const a = socket.handshake.auth ?? {};
		const str = (v: unknown) => (typeof v === "string" && v.length < 4096 ? v : undefined);
		const token = str(a.token), apiKey = str(a.apiKey);
		if (!token && !apiKey) throw Object.assign(new Error("authentication required"), { type: "UNAUTHORIZED", code: 401 });
		const auth = await this.opts.resolve({ token, apiKey, organizationId: str(a.organizationId) });
		await this.opts.limits.user(auth.userId);
		await this.opts.limits.openSocket(auth.userId, socket.id);
		socket.data.auth = auth;
	}

	private handshakeError(err: any) {
		const { error, ...rest } = refusal(err);
		const e = new Error(error.message) as Error & { data: unknown };
		e.data = { ...rest, ...error };
		return e;
	}

	private renewLeases() {
		const held = [...this.io.sockets.sockets.values()].map(s => ({ userId: s.data.auth.userId, socketId: s.id }));
		void this.opts.limits.renewSockets(held);
	}

	// Every call spends from the same per-IP and per-user budgets as a REST request.
	private charge(socket: Socket): Promise<void> {
		return this.opts.limits.ip(socket.handshake.address).then(() => this.opts.limits.user(socket.data.auth.userId));
	}

	private onConnection(socket: Socket) {
		const auth: SocketIdentity = socket.data.auth;
		socket.once("disconnect", () => void this.opts.limits.closeSocket(auth.userId, socket.id));
		socket.join(`user:${auth.userId}`);
		if (auth.organizationId) socket.join(`org:${auth.organizationId}`);

		// An access token's socket lives as long as the token; the client reconnects with a fresh one.
		if (auth.expiresAt) {
			const timer = setTimeout(() => socket.disconnect(true), Math.max(0, auth.expiresAt * 1000 - Date.now()));
			timer.unref();
			socket.once("disconnect", () => clearTimeout(timer));
		}

		const bucket = new Bucket(this.opts.callsPerSecond);
		let inFlight = 0;
		let refused = 0;
		socket.on("call", async (msg: any, ack: unknown) => {
			if (typeof ack !== "function") return;
			const reply = ack as (r: unknown) => void;
			if (!bucket.take()) {
				// A client that keeps flooding after being told is cut off.
				if (++refused > 100) socket.disconnect(true);
				return reply({ error: { code: "RATE_LIMITED", message: "too many calls on this connection; slow down" } });
			}
			refused = 0;
			if (inFlight >= this.opts.maxInFlight) return reply({ error: { code: "TOO_MANY_IN_FLIGHT", message: "too many calls in progress on this connection" } });
			if (!msg || typeof msg.action !== "string" || (msg.params != null && (typeof msg.params !== "object" || Array.isArray(msg.params))))
				return reply({ error: { code: "BAD_REQUEST", message: "expected { action: string, params?: object }" } });
			if (valueTooDeep(msg.params)) return reply(refusal(jsonTooDeepError()));
			if (!this.isPublished(msg.action)) return reply({ error: { code: "NOT_FOUND", message: "no such action" } });
			inFlight++;
			try {
				await this.charge(socket);
				const data = await this.broker.call(msg.action, msg.params ?? {}, { meta: { auth: socket.data.auth }, timeout: this.opts.timeout });
				reply({ data });
			} catch (err) {
				reply(refusal(err));
			} finally {
				inFlight--;
			}
		});
		// Chat streaming for the web UI: chunks as `ai:chunk`, then `ai:done` or `ai:error`. A socket that goes away
		// cancels its running requests on whichever AI replica runs them.
		// requestId -> the running stream (null while waiting for its first token)
		const streams = new Map<string, (NodeJS.ReadableStream & { destroy?: () => void }) | null>();
		socket.on("ai:chat", async (msg: any, ack: unknown) => {
			const reply = typeof ack === "function" ? (ack as (r: unknown) => void) : () => undefined;
			if (!bucket.take()) return reply({ error: { code: "RATE_LIMITED", message: "too many calls on this connection; slow down" } });
			if (!msg || typeof msg.params !== "object" || msg.params === null) return reply({ error: { code: "BAD_REQUEST", message: "expected { params: { model, messages }, requestId? }" } });
			if (valueTooDeep(msg.params)) return reply(refusal(jsonTooDeepError()));
			try {
				await this.charge(socket);
			} catch (err) {
				return reply(refusal(err));
			}
			// A client-chosen id lets Stop work before the first token; it is registered before the call, so a
			// socket that goes away meanwhile cancels it too.
			const requestId = typeof msg.requestId === "string" && UUID.test(msg.requestId) && !streams.has(msg.requestId) ? msg.requestId : crypto.randomUUID();
			streams.set(requestId, null);
			try {
				const stream: any = await this.broker.call("ai.stream", { ...msg.params, requestId }, { meta: { auth: socket.data.auth }, timeout: this.opts.timeout });
				if (!streams.has(requestId) || socket.disconnected) {
					stream.destroy?.();
					return;
				}
				streams.set(requestId, stream);
				reply({ data: { requestId } });
				for await (const line of ndjson(stream)) {
					if (line.done) socket.emit("ai:done", { requestId, usage: line.usage });
					else if (line.error) socket.emit("ai:error", { requestId, error: line.error });
					else socket.emit("ai:chunk", { requestId, chunk: line });
				}
			} catch (err) {
				const refused = refusal(err);
				if (streams.get(requestId)) socket.emit("ai:error", { requestId, error: refused.error });
				else reply(refused);
			} finally {
				streams.delete(requestId);
			}
		});
		socket.on("ai:cancel", (msg: any) => {
			if (typeof msg?.requestId === "string" && streams.has(msg.requestId)) this.cancel(msg.requestId, streams);
		});
		socket.once("disconnect", () => {
			for (const id of [...streams.keys()]) this.cancel(id, streams);
		});

		socket.emit("ready", { userId: auth.userId, organizationId: auth.organizationId ?? null });
	}

	private cancel(requestId: string, streams: Map<string, any>) {
		broadcast(this.broker, "ai.cancel", { requestId });
		streams.get(requestId)?.destroy?.();
		streams.delete(requestId);
	}

	// Only actions published to clients; internal ones (visibility "public" or narrower) do not exist here.
	private isPublished(action: string): boolean {
		if (!/^[A-Za-z0-9_.$-]{1,100}$/.test(action) || action.startsWith("$")) return false;
		const endpoint: any = (this.broker.registry as any).getActionEndpoints(action)?.getFirst();
		const def = endpoint?.action;
		return !!def && (def.visibility == null || def.visibility === "published");
	}

	push(room: string, event: string, payload: unknown) {
		if (!ROOM.test(room) || typeof event !== "string" || !event || event.length > 100) return;
		this.io.to(room).emit(event, payload);
	}

	// Sockets whose identity is no longer true (logout, revoked key, membership change) are closed.
	disconnectWhere(match: (auth: SocketIdentity) => boolean) {
		for (const socket of this.io.sockets.sockets.values()) if (match(socket.data.auth)) socket.disconnect(true);
	}

	close(): Promise<void> {
		clearInterval(this.renewer);
		return new Promise(resolve => {
			this.io.disconnectSockets(true);
			// The HTTP server belongs to the gateway, which closes it.
			this.io.engine.close();
			resolve();
		});
	}
}
