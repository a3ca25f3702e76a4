// The hot calls of API clients (a module route's `direct` aliases, such as an SDK's chat completions) answered
// without moleculer-web's request pipeline: no `gateway.rest` action call through the broker's middlewares, no URL
// and alias resolution, no per-request promise plumbing. What the request gets stays the same: the gateway's
// httpHandler has already set the security headers, the access log, the in-flight cap and the rate limits; here the
// route's own body parsers run, its authentication resolves the credentials, its handler answers and its onError
// shapes any failure. A browser's request (it sends Origin) takes moleculer-web's path, which answers CORS.
import type { IncomingMessage, ServerResponse } from "http";
import type { Context, ServiceBroker } from "moleculer";
import type { ModuleRoute } from "../../lib/module-routes";

type Next = (err?: unknown) => void;
type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
type AliasHandler = (this: unknown, req: IncomingMessage, res: ServerResponse) => unknown;

// The parts of a route as moleculer-web builds it that a direct call uses.
export interface BuiltRoute {
	path: string;
	middlewares: Middleware[];
	authentication?: ((ctx: Context, route: BuiltRoute, req: IncomingMessage, res: ServerResponse) => unknown) | null;
}

interface DirectAlias {
	routePath: string;
	handler: AliasHandler;
	route?: BuiltRoute;
}

// What the request carries once moleculer-web would have handled it: the fields module handlers and the error
// handlers read.
interface DirectRequest extends IncomingMessage {
	$ctx?: Context<unknown, Record<string, unknown>>;
	$route?: BuiltRoute;
	originalUrl?: string;
	body?: unknown;
}

// "POST <route path><alias path>" → its handler, from the module routes' `direct` lists.
export class DirectAliases {
	private readonly byKey = new Map<string, DirectAlias>();

	constructor(routes: ModuleRoute[]) {
		for (const route of routes)
			for (const alias of route.direct ?? []) {
				const [method, path] = alias.split(" ");
				this.byKey.set(`${method} ${route.path}${path}`, {
					routePath: route.path,
					handler: route.aliases[alias] as AliasHandler
				});
			}
	}

	// The alias a request may be answered by directly: its method and exact path, and no Origin (CORS).
	find(req: IncomingMessage, path: string, builtRoutes: BuiltRoute[]): DirectAlias | undefined {
		if (this.byKey.size === 0 || req.headers.origin !== undefined) return undefined;
		const alias = this.byKey.get(`${req.method} ${path}`);
		if (alias && !alias.route) alias.route = builtRoutes.find(r => r.path === alias.routePath);
		return alias?.route ? alias : undefined;
	}
}

function runMiddlewares(middlewares: Middleware[], req: IncomingMessage, res: ServerResponse): Promise<void> {
	return middlewares.reduce<Promise<void>>(
		(before, mw) =>
			before.then(() => new Promise((resolve, reject) => mw(req, res, err => (err ? reject(err) : resolve())))),
		Promise.resolve()
	);
}

// Answers one request with a direct alias, `gateway` being the handlers' `this` as under moleculer-web. Failures go
// to `sendError` (the route's onError, or the gateway's shape), as moleculer-web's errorHandler sends them.
export async function serveDirect(
	gateway: { broker: ServiceBroker; sendError(req: unknown, res: ServerResponse, err: unknown): void },
	request: IncomingMessage,
	res: ServerResponse,
	alias: DirectAlias
): Promise<void> {
	const req = request as DirectRequest;
	const route = alias.route!;
	const requestID = (req.headers["x-correlation-id"] ?? req.headers["x-request-id"]) as string | undefined;
	const ctx = gateway.broker.ContextFactory.create(gateway.broker, null as any, {}, { requestID }) as Context<
		unknown,
		Record<string, unknown>
	>;
	res.setHeader("X-Request-ID", ctx.requestID!);
	req.$ctx = ctx;
	req.$route = route;
	req.originalUrl ??= req.url;
	try {
		await runMiddlewares(route.middlewares, req, res);
		if (route.authentication)
			ctx.meta.user = (await route.authentication.call(gateway, ctx, route, req, res)) ?? null;
		await alias.handler.call(gateway, req, res);
	} catch (err) {
		gateway.sendError(req, res, err);
	}
}
