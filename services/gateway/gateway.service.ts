// Gateway: the only thing a client talks to. REST under /api/<module>/… generated from the actions' `rest`
// declarations, credentials resolved by auth.resolve, one JSON error shape, /metrics, and the built UI from public/.
import path from "path";
import ApiGateway from "moleculer-web";
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getConfig } from "../../lib/config";
import { prometheusText } from "../../lib/metrics";

const PUBLIC_DIR = path.resolve(__dirname, "../../public");

function bearer(req: any): string | undefined {
	const h = req.headers["authorization"];
	if (typeof h === "string" && h.startsWith("Bearer ")) return h.slice(7).trim();
	return undefined;
}

const GatewayService: ServiceSchema = {
	name: "gateway",
	mixins: [ApiGateway as any],

	settings: {
		port: getConfig().port,
		ip: getConfig().host,
		routes: [
			{
				path: "/api",
				autoAliases: true,
				mappingPolicy: "restrict",
				authentication: true,
				bodyParsers: { json: { strict: true, limit: "1mb" }, urlencoded: false },
				callOptions: { timeout: getConfig().requestTimeout }
			},
			{
				path: "/metrics",
				aliases: {
					"GET /"(this: any, _req: any, res: any) {
						res.setHeader("Content-Type", "text/plain; version=0.0.4");
						res.end(prometheusText(this.broker));
					}
				}
			}
		],
		assets: { folder: PUBLIC_DIR, options: { index: "index.html" } },
		log4XXResponses: false,
		logRequestParams: null,
		logResponseData: null
	},

	actions: {
		// moleculer-web's route listing is for operators (REPL), not for clients.
		listAliases: { visibility: "public" }
	},

	events: {
		// Routes of local services exist as soon as the node is up, not a debounce later.
		"$broker.started"(this: any) {
			this.routes.forEach((route: any) => route.opts.autoAliases && this.regenerateAutoAliases(route));
		}
	},

	methods: {
		// Credentials become ctx.meta.auth; the actions' `permission` then decides (lib/authz.ts).
		async authenticate(this: any, ctx: Context<any, any>, _route: any, req: any) {
			const token = bearer(req);
			const apiKey = typeof req.headers["x-api-key"] === "string" ? req.headers["x-api-key"] : undefined;
			if (!token && !apiKey) return null;
			const organizationId = typeof req.headers["x-organization-id"] === "string" ? req.headers["x-organization-id"] : undefined;
			const auth = await ctx.call("auth.resolve", { token, apiKey, organizationId });
			ctx.meta.auth = auth;
			return (auth as any).user;
		},

		// One error shape for every failure: { error: { code, message, fields? } }.
		reformatError(err: any) {
			const fields = Array.isArray(err.data) ? err.data.filter((d: any) => d && d.field).map((d: any) => ({ field: d.field, message: d.message })) : undefined;
			const status = typeof err.code === "number" ? err.code : 500;
			return {
				error: {
					code: err.type || err.name || "ERROR",
					message: status >= 500 && !err.type ? "internal error" : err.message,
					...(fields && fields.length ? { fields } : {})
				}
			};
		}
	}
};

export default GatewayService;
