// HTTP routes a module contributes outside /api (the manifest's `routes`, lib/module.ts): the gateway mounts every
// module's, loaded on this node or not, and names no module in its own code. A routes file's default export is a
// list of moleculer-web routes; their handlers run in the gateway (`this.sendJson`, `req.$ctx.call`). The gateway
// gives every such route what it gives /api: JSON bodies only, with its size limit and depth check, the per-IP
// limit, credentials resolved into ctx.meta.auth (unless the route says `authentication: false`), and its error
// shape unless the route brings its own `onError`.
import path from "path";
import type { Service } from "moleculer";
import { loadManifests, ManifestError } from "./module";

// What a module route's alias handler sees as `this`: the gateway service.
export interface ModuleRouteThis extends Service {
	sendJson(res: any, status: number, body: unknown): void;
}

export interface ModuleRoute {
	path: string; // e.g. "/v1"
	aliases: Record<string, unknown>;
	authentication?: boolean;
	onError?: (req: any, res: any, err: unknown) => void;
	// Response headers of its own that a browser client of another origin (CORS_ORIGINS) may read.
	exposedHeaders?: string[];
	// Aliases ("POST /chat/completions") the gateway answers without moleculer-web's request pipeline: the hot calls
	// of API clients (services/gateway/direct.ts). Each names a function alias on a fixed path; its handler sees the
	// same `this`, req and res, the body parsed by the route's parsers (req.body; there is no req.$params) and the
	// credentials resolved.
	direct?: string[];
	[option: string]: unknown;
}

// Paths the gateway serves itself (and "/", the UI).
const RESERVED = /^\/(api|metrics|socket\.io)?(\/|$)/i;
const PATH = /^(\/[A-Za-z0-9][\w.-]*)+$/;

export function loadModuleRoutes(dirs: string[]): { module: string; route: ModuleRoute }[] {
	const mounted: { module: string; route: ModuleRoute }[] = [];
	const owner = new Map<string, string>();
	for (const dir of dirs)
		for (const m of loadManifests(dir)) {
			if (!m.routes) continue;
			const file = path.join(dir, m.name, m.routes);
			const exported = require(file);
			const routes: unknown = exported?.default ?? exported;
			const fail = (message: string) => new ManifestError(path.relative(process.cwd(), file), message);
			if (!Array.isArray(routes)) throw fail("its default export must be a list of routes");
			for (const route of routes as ModuleRoute[]) {
				const p = route?.path;
				if (typeof p !== "string" || !PATH.test(p) || RESERVED.test(p))
					throw fail(
						`route path ${JSON.stringify(p)} must be like "/v1" and not /, /api, /metrics or /socket.io`
					);
				const other = owner.get(p.toLowerCase());
				if (other) throw fail(`route path ${p} is already mounted by module "${other}"`);
				for (const alias of route.direct ?? [])
					if (
						typeof route.aliases?.[alias] !== "function" ||
						!/^(GET|POST|PUT|PATCH|DELETE) \/[\w./-]*$/.test(alias)
					)
						throw fail(
							`direct alias ${JSON.stringify(alias)} of ${p} must name a function alias on a fixed path`
						);
				owner.set(p.toLowerCase(), m.name);
				mounted.push({ module: m.name, route });
			}
		}
	return mounted;
}
