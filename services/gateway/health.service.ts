// Health over HTTP: /api/health (liveness) and /api/health/ready (readiness of this node and which services the
// cluster offers). The per-node checks themselves live in lib/health.ts, which every process runs.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { PUBLIC } from "../../lib/permissions";

const HealthApiService: ServiceSchema = {
	name: "healthz",
	settings: { rest: "/health" },
	actions: {
		live: {
			rest: "GET /",
			permission: PUBLIC,
			handler(this: any, ctx: Context) {
				return ctx.call("health.live", {}, { nodeID: this.broker.nodeID });
			}
		},
		ready: {
			rest: "GET /ready",
			permission: PUBLIC,
			async handler(this: any, ctx: Context<any, any>) {
				const node: any = await ctx.call("health.ready", {}, { nodeID: this.broker.nodeID });
				const services = [
					...new Set((this.broker.registry.getServiceList({ onlyAvailable: true }) as any[]).map(s => s.name))
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
