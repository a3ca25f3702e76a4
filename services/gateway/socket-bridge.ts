// The socket.io bridge on the gateway's HTTP server. A socket authenticates with the same credentials as REST,
// joins `user:<id>` and `org:<id>`, may call published actions and stream what they return (authorized and charged
// exactly like REST), and receives what any service pushes with the broadcast event `gateway.push` — every gateway
// replica relays to its own sockets. The protocol is in README.md's Gateway section.
import crypto from "crypto";
import type { Server as HttpServer } from "http";
import { Server, Socket } from "socket.io";
import type { ServiceBroker } from "moleculer";
import type { RequestLimits } from "../../lib/rate-limit";
import { jsonTooDeepError, valueTooDeep } from "./body";
import { formatError } from "./errors";
import { stoppingError } from "./load-shedding";
import { ndjson } from "../../lib/ndjson";
import { cancelCall } from "../../lib/cancel";
import { mayReceive, type ChangeNotice } from "../../lib/live";
import { Idle } from "../../lib/in-flight";

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
const STREAM_ID = /^[\w.:-]{1,100}$/;

// A stream a socket asked for: the service running the call and the request id it runs under, for `cancel`.
interface OpenStream {
	service: string;
	requestId: string;
	stream?: NodeJS.ReadableStream & { destroy?: () => void };
	cancelled?: boolean;
}

const isStream = (v: any): v is NodeJS.ReadableStream =>
	v != null && typeof v.pipe === "function" && typeof v[Symbol.asyncIterator] === "function";

// An object-mode stream's items as they are; a byte stream is read as NDJSON, one item a line.
function items(stream: NodeJS.ReadableStream): AsyncIterable<unknown> {
	return (stream as any).readableObjectMode
		? (stream as AsyncIterable<unknown>)
		: ndjson(stream as AsyncIterable<Buffer>);
}

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

// What a call or stream gets once the gateway is stopping: the client reconnects (to another replica) and retries.
const STOPPING = refusal(stoppingError());

export class SocketBridge {
	readonly io: Server;
	private renewer: NodeJS.Timeout;
	// Calls and streams running on all sockets, which a stopping gateway lets finish.
	private running = 0;
	private readonly idle = new Idle(() => this.running);
	private closing = false;

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
		this.io.use((socket, next) =>
			(this.closing ? Promise.reject(stoppingError()) : this.authenticate(socket)).then(
				() => next(),
				err => next(this.handshakeError(err))
			)
		);
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
		const token = str(a.token),
			apiKey = str(a.apiKey);
		if (!token && !apiKey)
			throw Object.assign(new Error("authentication required"), { type: "UNAUTHORIZED", code: 401 });
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
		// What `call` and `stream` check before anything runs: the connection's own budget, the message's shape and
		// depth, and that the action is one clients may call. A refusal, or the service that owns the action.
		const admit = (msg: any): { refusal: unknown } | { service: string } => {
			if (this.closing) return { refusal: STOPPING };
			if (!bucket.take()) {
				// A client that keeps flooding after being told is cut off.
				if (++refused > 100) socket.disconnect(true);
				return {
					refusal: {
						error: { code: "RATE_LIMITED", message: "too many calls on this connection; slow down" }
					}
				};
			}
			refused = 0;
			if (inFlight >= this.opts.maxInFlight)
				return {
					refusal: {
						error: { code: "TOO_MANY_IN_FLIGHT", message: "too many calls in progress on this connection" }
					}
				};
			if (
				!msg ||
				typeof msg.action !== "string" ||
				(msg.params != null && (typeof msg.params !== "object" || Array.isArray(msg.params)))
			)
				return {
					refusal: { error: { code: "BAD_REQUEST", message: "expected { action: string, params?: object }" } }
				};
			if (valueTooDeep(msg.params)) return { refusal: refusal(jsonTooDeepError()) };
			const service = this.publishedService(msg.action);
			if (!service) return { refusal: { error: { code: "NOT_FOUND", message: "no such action" } } };
			return { service };
		};
		const options = (requestID?: string) => ({
			meta: { auth: socket.data.auth },
			timeout: this.opts.timeout,
			requestID
		});

		socket.on("call", async (msg: any, ack: unknown) => {
			if (typeof ack !== "function") return;
			const reply = ack as (r: unknown) => void;
			const admitted = admit(msg);
			if ("refusal" in admitted) return reply(admitted.refusal);
			inFlight++;
			this.running++;
			try {
				await this.charge(socket);
				reply({ data: await this.broker.call(msg.action, msg.params ?? {}, options()) });
			} catch (err) {
				reply(refusal(err));
			} finally {
				inFlight--;
				this.finished();
			}
		});

		// `stream`: an action that returns a stream, its items sent as `stream:data` until `stream:end` or
		// `stream:error`. The client names the stream (`id`, unique on its socket) so that `cancel` works before the
		// action has answered; the call itself gets a request id of the bridge's own, so no client can name another's.
		const streams = new Map<string, OpenStream>();
		socket.on("stream", async (msg: any, ack: unknown) => {
			if (typeof ack !== "function") return;
			const reply = ack as (r: unknown) => void;
			const admitted = admit(msg);
			if ("refusal" in admitted) return reply(admitted.refusal);
			const id = msg.id;
			if (typeof id !== "string" || !STREAM_ID.test(id) || streams.has(id))
				return reply({
					error: {
						code: "BAD_REQUEST",
						message: "expected id: a name (1-100 characters) not in use on this connection"
					}
				});
			const open: OpenStream = { service: admitted.service, requestId: crypto.randomUUID() };
			streams.set(id, open);
			inFlight++;
			this.running++;
			let answered = false;
			try {
				await this.charge(socket);
				// The id the call runs under (ctx.requestID), as the service's logs will name it.
				socket.emit("stream:start", { id, requestId: open.requestId });
				const result: any = await this.broker.call(msg.action, msg.params ?? {}, options(open.requestId));
				if (open.cancelled || socket.disconnected) {
					result?.destroy?.();
					return reply({ status: 499, error: { code: "CANCELLED", message: "cancelled" } });
				}
				open.stream = isStream(result) ? result : undefined;
				reply({ data: { id } });
				answered = true;
				for await (const item of isStream(result) ? items(result) : [result]) {
					if (open.cancelled) return;
					socket.emit("stream:data", { id, data: item });
				}
				if (!open.cancelled) socket.emit("stream:end", { id });
			} catch (err) {
				if (open.cancelled) return;
				const refused = refusal(err);
				if (answered) socket.emit("stream:error", { id, error: refused.error, status: refused.status });
				else reply(refused);
			} finally {
				inFlight--;
				this.finished();
				streams.delete(id);
			}
		});
		socket.on("cancel", (msg: any, ack: unknown) => {
			const open = typeof msg?.id === "string" ? streams.get(msg.id) : undefined;
			if (open) this.cancel(open);
			if (typeof ack === "function")
				ack(open ? { data: { id: msg.id } } : { error: { code: "NOT_FOUND", message: "no such stream" } });
		});
		socket.once("disconnect", () => {
			for (const open of streams.values()) this.cancel(open);
		});

		socket.emit("ready", { userId: auth.userId, organizationId: auth.organizationId ?? null });
	}

	// The stream's holder drops it here, and the replica running the call aborts it (lib/cancel.ts), even before it
	// has answered.
	private cancel(open: OpenStream) {
		if (open.cancelled) return;
		open.cancelled = true;
		cancelCall(this.broker, open.service, open.requestId);
		open.stream?.destroy?.();
	}

	// Only actions published to clients; internal ones (visibility "public" or narrower) do not exist here.
	// The name of the service that owns it, for cancellation.
	private publishedService(action: string): string | undefined {
		if (!/^[A-Za-z0-9_.$-]{1,100}$/.test(action) || action.startsWith("$")) return undefined;
		const endpoint: any = (this.broker.registry as any).getActionEndpoints(action)?.getFirst();
		const def = endpoint?.action;
		if (!def || (def.visibility != null && def.visibility !== "published")) return undefined;
		return endpoint.service?.fullName ?? endpoint.service?.name;
	}

	push(room: string, event: string, payload: unknown) {
		if (!ROOM.test(room) || typeof event !== "string" || !event || event.length > 100) return;
		this.io.to(room).emit(event, payload);
	}

	// A live notice goes as `changed` to this replica's sockets of the organization whose caller may read the
	// entity; who may see it (permission, owner) stays on the server.
	pushChange(notice: ChangeNotice) {
		const { organizationId, permission, ownerId, ownerPermission, ...shown } = notice;
		const room = this.io.sockets.adapter.rooms.get(`org:${organizationId}`);
		for (const id of room ?? []) {
			const socket = this.io.sockets.sockets.get(id);
			if (socket && mayReceive(socket.data.auth, notice)) socket.emit("changed", shown);
		}
	}

	// Sockets whose identity is no longer true (logout, revoked key, membership change) are closed.
	disconnectWhere(match: (auth: SocketIdentity) => boolean) {
		for (const socket of this.io.sockets.sockets.values()) if (match(socket.data.auth)) socket.disconnect(true);
	}

	private finished() {
		this.running--;
		this.idle.notify();
	}

	// From now on new connections, calls and streams are refused (SHUTTING_DOWN).
	refuseNew(): void {
		this.closing = true;
	}

	// Refuses new work, lets the calls and streams running finish for up to `drainMs`, then disconnects every socket.
	async close(drainMs = 0): Promise<void> {
		clearInterval(this.renewer);
		this.closing = true;
		if (drainMs > 0 && !(await this.idle.wait(drainMs)))
			this.broker.logger.warn(`${this.running} socket calls still running after ${drainMs / 1000} s are cut`);
		this.io.disconnectSockets(true);
		// The HTTP server belongs to the gateway, which closes it.
		this.io.engine.close();
	}
}
