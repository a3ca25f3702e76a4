// Gateway: the only thing a client talks to. REST under /api/<module>/… generated from the actions' `rest`
// declarations, credentials resolved by auth.resolve (cached briefly), rate limits shared through Redis, one JSON
// error shape, security headers, OpenAPI, /metrics, the socket.io bridge, and the built UI from public/.
import fs from "fs";
import path from "path";
import crypto from "crypto";
import type { IncomingMessage, Server as HttpServer } from "http";
import ApiGateway from "moleculer-web";
import type { Alias, ApiSettingsSchema, GatewayResponse, IncomingRequest, Route } from "moleculer-web";
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getConfig, moduleSettings } from "../../lib/config";
import { prometheusText } from "../../lib/metrics";
import { RequestLimits } from "../../lib/rate-limit";
import { jsonBodyParsers } from "./body";
import { formatError } from "./errors";
import { buildOpenApi } from "./openapi";
import { moduleDirs, permissionTable } from "../../lib/authz";
import { loadModuleRoutes } from "../../lib/module-routes";
import { SocketBridge, SocketIdentity } from "./socket-bridge";
import { LocalCache } from "../../lib/local-cache";
import { ROOT } from "../../lib/paths";
import type { ChangeNotice } from "../../lib/live";
import gatewayModule from "./gateway.module";
import { InFlightCap, overloadedError, stoppingError } from "./load-shedding";
import { stopTimeLeft } from "../../lib/in-flight";
import { HttpMetrics } from "./http-metrics";
import { DirectAliases, serveDirect, type BuiltRoute } from "./direct";

type Credentials = { token?: string; apiKey?: string; organizationId?: string };

// A route as moleculer-web builds it; its typings leave out the route's own error handler.
interface GatewayRoute extends Route {
	onError?: (this: GatewayThis, req: GatewayRequest, res: GatewayResponse, err: unknown) => void;
}
interface GatewayRequest extends IncomingRequest {
	$route: GatewayRoute;
	$retryAfter?: number;
	// The user whose limit the request was already charged to with its IP's (a cached identity).
	$chargedUser?: string;
	// The identity cache's key of the request's credentials, computed once.
	$identityKey?: string;
}

// What moleculer-web puts on the service at run time and this file uses; its typings declare none of it.
interface ApiGatewayThis extends Service<ApiSettingsSchema> {
	server: HttpServer;
	routes: GatewayRoute[];
	aliases: (Alias & { fullPath: string; toString(): string })[];
	regenerateAutoAliases(route: GatewayRoute): void;
	// lodash's debounce, set in created().
	regenerateAllAutoAliases?: { cancel(): void };
}

// `this` of the gateway: moleculer-web's service plus the fields and methods below.
interface GatewayThis extends ApiGatewayThis {
	identities: LocalCache<SocketIdentity>;
	limits: RequestLimits;
	// API requests in flight, capped (load shedding).
	inFlight: InFlightCap;
	httpMetrics: HttpMetrics;
	// Set when the gateway starts to stop: API requests are refused (SHUTTING_DOWN) while those in flight finish.
	stopping?: boolean;
	serverClosed?: Promise<void>;
	refuseRequests(): Promise<void>;
	// The route table as last logged; undefined until every local service has started (the first full table).
	loggedRoutes?: Set<string>;
	bridge?: SocketBridge;
	shouldServeApp(req: GatewayRequest): boolean;
	sendStarting(req: GatewayRequest, res: GatewayResponse, path: string): Promise<void>;
	sendOverloaded(req: GatewayRequest, res: GatewayResponse, path: string): void;
	logRoutes(): void;
	resolveIdentity(creds: Credentials, key?: string): Promise<SocketIdentity>;
	forgetIdentities(match: (a: SocketIdentity) => boolean): void;
	sendRateLimited(res: GatewayResponse, retryAfterSec: number): void;
	sendUnavailable(
		req: GatewayRequest,
		res: GatewayResponse,
		path: string,
		err: ReturnType<typeof overloadedError>
	): void;
	sendJson(res: GatewayResponse, status: number, body: unknown): void;
	sendError(req: GatewayRequest, res: GatewayResponse, err: any): void;
	openApiDocument(): ReturnType<typeof buildOpenApi>;
}

// moleculer-web's request handling, which the gateway's own httpHandler runs after its checks.
const apiHttpHandler = ApiGateway.methods?.httpHandler;
if (!apiHttpHandler) throw new Error("moleculer-web has no methods.httpHandler for the gateway to wrap");

const PUBLIC_DIR = path.join(ROOT, "public");
const IDENTITY_TTL_MS = 10_000;
const IDENTITY_CACHE_MAX = 10_000;
const config = getConfig();

// CORS for the allowed origins (CORS_ORIGINS). No allowedHeaders: a preflight gets back the headers it asks for. The
// origins are the allow-list; the API clients of module routes send headers of their own (SDK versions, retry
// counts) that a fixed list would refuse, and a browser client must not break on an SDK upgrade.
function corsOf(origins: string[]) {
	return { origin: origins, methods: ["GET", "POST", "PUT", "PATCH", "DELETE"], maxAge: 600 };
}

// What a browser client of another origin may read besides the simple headers: when to retry, a download's name.
const EXPOSED_HEADERS = ["Retry-After", "Content-Disposition"];

// Routes the modules contribute outside /api (their manifests' `routes`), mounted with the gateway's body rules and
// CORS, plus the response headers the route names as readable (`exposedHeaders`).
const LOADED_ROUTES = loadModuleRoutes(moduleDirs()).map(m => m.route);
const MODULE_ROUTES = LOADED_ROUTES.map(({ exposedHeaders, direct: _direct, ...route }) => ({
	authentication: true,
	...route,
	...(config.corsOrigins.length
		? { cors: { ...corsOf(config.corsOrigins), exposedHeaders: [...EXPOSED_HEADERS, ...(exposedHeaders ?? [])] } }
		: {}),
	bodyParsers: jsonBodyParsers(config.bodyLimit)
}));
const MOUNTED = MODULE_ROUTES.map(r => r.path.slice(1));
// The hot API calls answered without moleculer-web's pipeline (direct.ts).
const DIRECT = new DirectAliases(LOADED_ROUTES);
const under = (prefixes: string[]) =>
	new RegExp(`^/(${prefixes.map(p => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})(/|$)`);
// API calls (the per-IP limit), and paths that never get the UI's index.html.
const API_PATHS = under(["api", ...MOUNTED]);
// Never shed: a probe must see a loaded node alive.
const HEALTH_PATH = under(["api/health"]);
const NOT_APP = under(["api", "metrics", "socket.io", ...MOUNTED]);

const SECURITY_HEADERS: Record<string, string> = {
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options": "DENY",
	"Referrer-Policy": "no-referrer",
	"Cross-Origin-Opener-Policy": "same-origin",
	"Content-Security-Policy":
		"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'"
};

function header(req: IncomingMessage, name: string): string | undefined {
	const v = req.headers[name];
	return typeof v === "string" && v.length > 0 ? v : undefined;
}

function bearer(req: IncomingMessage): string | undefined {
	const h = header(req, "authorization");
	return h && /^Bearer /i.test(h) ? h.slice(7).trim() : undefined;
}

// The credentials a request presents: a bearer token, or the platform API key (as X-API-Key, or as a bearer token by
// clients that only send those), in the organization it names.
function credentialsOf(req: IncomingMessage): Credentials | undefined {
	const presented = bearer(req);
	const token = presented && !presented.startsWith("cide_") ? presented : undefined;
	const apiKey = header(req, "x-api-key") ?? (presented?.startsWith("cide_") ? presented : undefined);
	if (!token && !apiKey) return undefined;
	return { token, apiKey, organizationId: header(req, "x-organization-id") };
}

const identityKey = (creds: Credentials) =>
	crypto
		.createHash("sha256")
		.update(`${creds.token ?? ""}|${creds.apiKey ?? ""}|${creds.organizationId ?? ""}`)
		.digest("base64url");

function clientIp(req: IncomingMessage): string {
	return req.socket?.remoteAddress ?? "unknown";
}

// GET /metrics for the holder of the metrics token (a Prometheus scraper), 401 for anyone else.
function metricsRoute(token: string) {
	const expected = crypto.createHash("sha256").update(token).digest();
	return {
		path: "/metrics",
		aliases: {
			"GET /"(this: GatewayThis, req: GatewayRequest, res: GatewayResponse) {
				const given = crypto
					.createHash("sha256")
					.update(bearer(req) ?? "")
					.digest();
				if (!crypto.timingSafeEqual(given, expected)) {
					res.setHeader("WWW-Authenticate", 'Bearer realm="metrics"');
					const err = { code: 401, type: "UNAUTHORIZED", message: "metrics need the metrics token" };
					return this.sendError(req, res, err);
				}
				res.setHeader("Content-Type", "text/plain; version=0.0.4");
				res.end(prometheusText(this.broker));
			}
		}
	};
}

const GatewayService: ServiceSchema = {
	name: "gateway",
	mixins: [ApiGateway],
	dependencies: ["auth"],

	settings: {
		port: config.port,
		ip: config.host,
		cors: config.corsOrigins.length
			? { ...corsOf(config.corsOrigins), exposedHeaders: EXPOSED_HEADERS }
			: undefined,
		routes: [
			{
				path: "/api",
				autoAliases: true,
				mappingPolicy: "restrict",
				authentication: true,
				bodyParsers: jsonBodyParsers(config.bodyLimit),
				callOptions: { timeout: config.requestTimeout },
				use: [
					// A body that is not JSON is refused rather than silently ignored.
					function requireJson(req: GatewayRequest, _res: GatewayResponse, next: (err?: unknown) => void) {
						const hasBody =
							Number(req.headers["content-length"] ?? 0) > 0 || req.headers["transfer-encoding"] != null;
						if (hasBody && !/^application\/json\b/i.test(req.headers["content-type"] ?? ""))
							return next(
								Object.assign(new Error("send the body as application/json"), {
									code: 415,
									type: "UNSUPPORTED_MEDIA_TYPE"
								})
							);
						next();
					}
				],
				aliases: {
					"GET /openapi.json"(this: GatewayThis, _req: GatewayRequest, res: GatewayResponse) {
						this.sendJson(res, 200, this.openApiDocument());
					}
				}
			},
			...MODULE_ROUTES,
			// Never anonymous on the public port: only with METRICS_TOKEN set, and only for its holder. Without it,
			// metrics are on the private HEALTH_PORT / METRICS_PORT only.
			...(config.metricsToken ? [metricsRoute(config.metricsToken)] : [])
		],
		assets: fs.existsSync(PUBLIC_DIR)
			? { folder: PUBLIC_DIR, options: { index: "index.html", maxAge: "1h" } }
			: undefined,
		// moleculer-web logs the whole table at every regeneration (each time services change, debounced): the
		// gateway logs it once when the node has started, then only the routes that come and go (logRoutes).
		logRouteRegistration: "debug",
		logRequest: null,
		logResponse: null,
		logRequestParams: null,
		logResponseData: null,
		log4XXResponses: false
	},

	actions: {
		// moleculer-web's route listing is for operators (REPL) and the OpenAPI builder, not for clients.
		listAliases: { visibility: "public" },
		// An HTTP request is answered once: the calls it makes retry on their own, the request never replays.
		rest: { retryPolicy: { enabled: false } }
	},

	events: {
		// Routes of local services exist as soon as the node is up, not a debounce later.
		"$broker.started"(this: GatewayThis) {
			this.routes.forEach(route => route.opts.autoAliases && this.regenerateAutoAliases(route));
			this.logRoutes();
		},

		// moleculer-web's debounced regeneration after services came or went (broadcast by every gateway replica).
		"$api.aliases.regenerated"(this: GatewayThis) {
			if (this.loggedRoutes) this.logRoutes();
		},

		// Any service reaches a user's or an organization's sockets on every gateway replica.
		"gateway.push"(this: GatewayThis, ctx: Context<{ room: string; event: string; payload: unknown }>) {
			this.bridge?.push(ctx.params.room, ctx.params.event, ctx.params.payload);
		},

		// A change an organization's open pages show (lib/live.ts): to the sockets whose caller may read it.
		"gateway.changed"(this: GatewayThis, ctx: Context<ChangeNotice>) {
			this.bridge?.pushChange(ctx.params);
		},

		"auth.session.revoked"(this: GatewayThis, ctx: Context<{ sessionId: string }>) {
			this.forgetIdentities(a => a.sessionId === ctx.params.sessionId);
		},
		"auth.apikey.revoked"(this: GatewayThis, ctx: Context<{ apiKeyId: string }>) {
			this.forgetIdentities(a => a.apiKeyId === ctx.params.apiKeyId);
		},
		"auth.membership.changed"(this: GatewayThis, ctx: Context<{ organizationId: string; userId?: string }>) {
			const { organizationId, userId } = ctx.params;
			this.forgetIdentities(a => a.organizationId === organizationId && (!userId || a.userId === userId));
		}
	},

	methods: {
		// Every request: security headers, a log line without credentials or bodies (the logger escapes client text),
		// and the per-IP limit.
		async httpHandler(
			this: GatewayThis,
			req: GatewayRequest,
			res: GatewayResponse,
			next?: (err?: unknown) => void
		) {
			for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
			const started = process.hrtime.bigint();
			const path = (req.url ?? "").split("?")[0];
			// The API mount the request is for ("api", "v1", …; health checks apart), undefined for the UI's files.
			const api = API_PATHS.exec(path)?.[1];
			const health = api !== undefined && HEALTH_PATH.test(path);
			res.once("finish", () => {
				const ms = Number(process.hrtime.bigint() - started) / 1e6;
				this.logger.info(`${req.method} ${path} ${res.statusCode} ${ms.toFixed(1)}ms`);
				if (api !== undefined) this.httpMetrics.record(health ? "api/health" : api, res.statusCode, ms);
			});
			// The port opens when the gateway starts, before the node's other services and the route table: until then
			// an API call is told to come back (readiness says what is missing), not that its endpoint does not exist.
			if (!this.loggedRoutes && api !== undefined) return this.sendStarting(req, res, path);
			if (api !== undefined) {
				// Stopping: every response closes its connection (a keep-alive client reconnects, to another replica),
				// and only liveness is still answered; readiness says 503 with the rest.
				if (this.stopping) {
					res.setHeader("Connection", "close");
					if (path !== "/api/health") return this.sendUnavailable(req, res, path, stoppingError());
				}
				if (!health && !this.inFlight.enter(res)) return this.sendOverloaded(req, res, path);
				// A caller whose identity is cached is charged to its IP and its user in one step; anyone else to the
				// IP now, and to the user once authenticated.
				const creds = credentialsOf(req);
				if (creds) req.$identityKey = identityKey(creds);
				const known = req.$identityKey && this.identities.get(req.$identityKey);
				try {
					if (known) {
						await this.limits.ipAndUser(clientIp(req), known.userId);
						req.$chargedUser = known.userId;
					} else await this.limits.ip(clientIp(req));
				} catch (err: any) {
					return this.sendRateLimited(res, err.data.retryAfter);
				}
			}
			const direct = DIRECT.find(req, path, this.routes as unknown as BuiltRoute[]);
			if (direct) return serveDirect(this, req, res, direct);
			if (req.method === "GET" && this.shouldServeApp(req)) req.url = "/index.html";
			return apiHttpHandler.call(this, req, res, next);
		},

		// Idempotent; resolves once every connection has closed.
		refuseRequests(this: GatewayThis): Promise<void> {
			this.stopping = true;
			this.bridge?.refuseNew();
			this.serverClosed ??= new Promise<void>(resolve =>
				this.server.listening ? this.server.close(() => resolve()) : resolve()
			);
			return this.serverClosed;
		},

		// Logged once a while, not per request: under overload a line each would add to the load.
		sendOverloaded(this: GatewayThis, req: GatewayRequest, res: GatewayResponse, path: string) {
			const shed = this.inFlight.noteShed();
			if (shed)
				this.logger.warn(
					`load shedding: ${shed} API requests refused with 503 (${this.inFlight.max} in flight)`
				);
			this.sendUnavailable(req, res, path, overloadedError(1));
		},

		// In the error shape of the route the request was for (an API of another shape answers in its own).
		sendUnavailable(
			this: GatewayThis,
			req: GatewayRequest,
			res: GatewayResponse,
			path: string,
			err: ReturnType<typeof overloadedError>
		) {
			const route = this.routes.find(r => r.path.length > 1 && (path + "/").startsWith(r.path + "/"));
			if (route?.onError) return route.onError.call(this, Object.assign(req, { $route: route }), res, err);
			res.setHeader("Retry-After", String(err.data.retryAfter));
			this.sendJson(res, 503, formatError(err).body);
		},

		async sendStarting(this: GatewayThis, req: GatewayRequest, res: GatewayResponse, path: string) {
			res.setHeader("Retry-After", "1");
			if (req.method === "GET" && path === "/api/health/ready") {
				const ready = await this.broker
					.call<{ status: string }, Record<string, never>>(
						"healthz.ready",
						{},
						{ nodeID: this.broker.nodeID }
					)
					.catch(() => ({ status: "not ready", checks: { services: { ok: false, error: "starting" } } }));
				return this.sendJson(res, 503, { ...ready, status: "not ready" });
			}
			const message = "the platform is starting; try again in a moment";
			this.sendJson(res, 503, { error: { code: "SERVICE_UNAVAILABLE", message } });
		},

		// The whole table once, when every local service has started; afterwards the routes that came or went
		// (services of other nodes joining or leaving the cluster).
		logRoutes(this: GatewayThis) {
			const now = new Set(this.aliases.map(a => a.toString().trim()));
			const before = this.loggedRoutes;
			this.loggedRoutes = now;
			if (!before) {
				this.logger.info(`Routes (${now.size}):`);
				for (const line of now) this.logger.info(`  ${line}`);
				return;
			}
			for (const line of now) if (!before.has(line)) this.logger.info(`Route added: ${line}`);
			for (const line of before) if (!now.has(line)) this.logger.info(`Route removed: ${line}`);
		},

		// History-mode UI: a GET for a page path (no file extension, not an API) gets the app's index.html.
		shouldServeApp(this: GatewayThis, req: GatewayRequest): boolean {
			const url: string = (req.url ?? "").split("?")[0];
			return (
				!!this.settings.assets &&
				!NOT_APP.test(url) &&
				!path.extname(url) &&
				(req.headers.accept ?? "").includes("text/html")
			);
		},

		// Credentials become ctx.meta.auth; the actions' `permission` then decides (lib/authz.ts).
		async authenticate(
			this: GatewayThis,
			ctx: Context<unknown, { auth?: SocketIdentity }>,
			_route: GatewayRoute,
			req: GatewayRequest
		) {
			const creds = credentialsOf(req);
			if (!creds) return null;
			const auth = await this.resolveIdentity(creds, req.$identityKey);
			ctx.meta.auth = auth;
			if (req.$chargedUser !== auth.userId) await this.limits.user(auth.userId);
			return auth.user;
		},

		// auth.resolve costs a few queries; its answer is reused for a few seconds, never past the credential's own
		// expiry, and dropped at once when the auth module announces a logout, a revoked key or a membership change.
		async resolveIdentity(
			this: GatewayThis,
			creds: Credentials,
			key = identityKey(creds)
		): Promise<SocketIdentity> {
			const hit = this.identities.get(key);
			if (hit) return hit;
			const auth = await this.broker.call<SocketIdentity, Credentials>("auth.resolve", creds);
			this.identities.set(key, auth, auth.expiresAt ? auth.expiresAt * 1000 - Date.now() : undefined);
			return auth;
		},

		forgetIdentities(this: GatewayThis, match: (a: SocketIdentity) => boolean) {
			this.identities.dropWhere(match);
			this.bridge?.disconnectWhere(match);
		},

		sendRateLimited(this: GatewayThis, res: GatewayResponse, retryAfterSec: number) {
			res.setHeader("Retry-After", String(retryAfterSec));
			this.sendJson(res, 429, { error: { code: "RATE_LIMITED", message: "too many requests; retry later" } });
		},

		sendJson(_res: GatewayResponse, status: number, body: unknown) {
			_res.statusCode = status;
			_res.setHeader("Content-Type", "application/json; charset=utf-8");
			_res.end(JSON.stringify(body));
		},

		// One error shape for every failure: { error: { code, message, fields? } }.
		sendError(this: GatewayThis, req: GatewayRequest, res: GatewayResponse, err: any) {
			if (res.headersSent) return;
			// A route with an error format of its own (a module route in another API's shape) answers in it.
			if (req.$route?.onError) return req.$route.onError.call(this, req, res, err);
			const { status, body } = formatError(err);
			// A refusal says when to come back: a rate limit, or a quota or budget until its period ends (402).
			if (status === 429 || err?.data?.retryAfter)
				res.setHeader("Retry-After", String(err?.data?.retryAfter ?? req.$retryAfter ?? 60));
			const path = (req.originalUrl ?? req.url ?? "").split("?")[0];
			if (status >= 500) this.logger.warn(`${req.method} ${path} failed:`, err?.message);
			this.sendJson(res, status, body);
		},

		// moleculer-web would log stacks and error data; sendError logs 5xx without either.
		errorHandler(this: GatewayThis, req: GatewayRequest, res: GatewayResponse, err: unknown) {
			this.sendError(req, res, err);
		},

		send404(this: GatewayThis, req: GatewayRequest, res: GatewayResponse) {
			this.sendError(req, res, { code: 404, type: "NOT_FOUND", message: "no such endpoint" });
		},

		openApiDocument(this: GatewayThis) {
			const aliases = this.aliases
				.filter(a => a.action)
				.map(a => ({ methods: a.method, fullPath: a.fullPath, actionName: a.action }));
			const actions = new Map<string, any>();
			for (const a of this.broker.registry.getActionList({
				onlyAvailable: true,
				skipInternal: true,
				withEndpoints: false
			}))
				actions.set(a.name, a.action);
			const version = require(path.join(ROOT, "package.json")).version;
			return buildOpenApi(aliases, actions, version, permissionTable().declared);
		}
	},

	// Lifecycle handlers are typed with moleculer's plain Service as `this`; the gateway's fields are set here.
	created(this: Service) {
		const self = this as GatewayThis;
		self.identities = new LocalCache<SocketIdentity>({ max: IDENTITY_CACHE_MAX, ttlMs: IDENTITY_TTL_MS });
		self.limits = new RequestLimits({
			redisUrl: config.redisUrl,
			prefix: `${config.namespace}:ratelimit`,
			perIpPerMinute: config.rateLimitIpPerMinute,
			perUserPerMinute: config.rateLimitUserPerMinute,
			socketsPerUser: config.socketsPerUser
		});
		self.inFlight = new InFlightCap(moduleSettings(gatewayModule).maxInFlight, self.broker);
		self.httpMetrics = new HttpMetrics(self.broker);
		// A rolling restart: as soon as the broker starts to stop, before it waits for the calls in flight, the port
		// closes (new connections go to another replica) and API requests on open connections are refused.
		self.broker.middlewares.add({
			name: "GatewayStopping",
			stopping: async () => void self.refuseRequests()
		});
	},

	started(this: Service) {
		const self = this as GatewayThis;
		self.bridge = new SocketBridge(self.broker, self.server, {
			resolve: creds => self.resolveIdentity(creds),
			limits: self.limits,
			corsOrigins: config.corsOrigins,
			callsPerSecond: config.socketCallsPerSecond,
			maxInFlight: 20,
			timeout: config.requestTimeout
		});
	},

	async stopped(this: Service) {
		const self = this as GatewayThis;
		// moleculer-web regenerates its aliases 500 ms after the services it sees change: a stopped gateway must not.
		self.regenerateAllAutoAliases?.cancel?.();
		// The responses and socket streams in flight finish (within what is left of the broker's shutdown budget); then
		// what is left is cut. moleculer-web's own stop, which follows, finds the server closed.
		const closed = self.refuseRequests();
		const drainMs = stopTimeLeft(self.broker);
		const [drained] = await Promise.all([self.inFlight.drained(drainMs), self.bridge?.close(drainMs)]);
		if (!drained)
			this.logger.warn(
				`${self.inFlight.inFlight} API requests still in flight after ${(drainMs / 1000).toFixed(1)} s are cut`
			);
		self.server.closeAllConnections();
		await closed;
		await self.limits?.close();
	}
};

export default GatewayService;
