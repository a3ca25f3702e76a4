// Health over HTTP: /api/health (liveness) and /api/health/ready (readiness of this node and which services the
// cluster offers). The per-node checks themselves live in lib/health.ts, which every process runs.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { PUBLIC } from "../../lib/permissions";
import type { NodeReadiness } from "../../lib/health";

// What health.ready (lib/health.ts) answers for one node.
const HealthApiService: ServiceSchema = {
	name: "healthz",
	settings: { rest: "/health" },
	actions: {
		live: {
			rest: "GET /",
			permission: PUBLIC,
			handler(this: Service, ctx: Context) {
				return ctx.call("health.live", {}, { nodeID: this.broker.nodeID });
			}
		},
		ready: {
			rest: "GET /ready",
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
