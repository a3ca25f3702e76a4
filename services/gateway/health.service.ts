// Health over HTTP: /api/health (liveness) and /api/health/ready (readiness of this node and which services the
// cluster offers). The per-node checks themselves live in lib/health.ts, which every process runs.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { PUBLIC } from "../../lib/permissions";
import type { NodeReadiness } from "../../lib/health";
import { listOf, named } from "../../lib/response";

const Live = named("Liveness", { status: { type: "equal", value: "ok" }, nodeID: "string", uptime: "number|integer" });
const Ready = named("Readiness", {
	status: { type: "enum", values: ["ready", "not ready"] },
	nodeID: "string",
	checks: {
		type: "record",
		key: "string",
		value: { type: "object", props: { ok: "boolean", ms: "number|optional", error: "string|optional" } }
	},
	services: listOf("string")
});

// What health.ready (lib/health.ts) answers for one node.
const HealthApiService: ServiceSchema = {
	name: "healthz",
	settings: { rest: "/health" },
	actions: {
		live: {
			rest: "GET /",
			response: Live,
			permission: PUBLIC,
			handler(this: Service, ctx: Context) {
				return ctx.call("health.live", {}, { nodeID: this.broker.nodeID });
			}
		},
		ready: {
			rest: "GET /ready",
			response: Ready,
			permission: PUBLIC,
			async handler(this: Service, ctx: Context<unknown, { $statusCode?: number }>) {
				const node = await ctx.call<NodeReadiness, Record<string, never>>(
					"health.ready",
					{},
					{ nodeID: this.broker.nodeID }
				);
				const services = [
					...new Set(this.broker.registry.getServiceList({ onlyAvailable: true }).map(s => s.name))
				]
					.filter(n => !n.startsWith("$"))
					.sort();
				if (node.status !== "ready") ctx.meta.$statusCode = 503;
				return { ...node, services };
			}
		}
	}
};

export default HealthApiService;
