// Health of one node: liveness (the process answers) and readiness (every service of the node started; database,
// transporter, channels, cache reachable).
// Every process runs this service; `broker.call("health.ready", {}, { nodeID })` asks one node in particular.
import http from "http";
import type { Service, ServiceBroker } from "moleculer";
import type { ServiceSchema } from "./schema";
import { getDb } from "./db";
import { prometheusText } from "./metrics";

export interface Check {
	ok: boolean;
	ms?: number;
	error?: string;
}

// What `health.ready` answers for one node.
export interface NodeReadiness {
	status: "ready" | "not ready";
	nodeID: string;
	checks: Record<string, Check>;
}

// This node's services that have not started yet, each with the services it still waits for: a node whose gateway
// already listens may still be starting the rest (a service waits for its dependencies), and is not ready until then.
export function startingServices(broker: ServiceBroker): Check {
	const started = new Set(
		broker.registry.getServiceList({ onlyLocal: true }).map((s: { fullName: string }) => s.fullName)
	);
	const known = new Set(broker.registry.getServiceList({ onlyAvailable: true }).map((s: { name: string }) => s.name));
	const waiting = broker.services
		.filter(s => !started.has(s.fullName))
		.map(s => {
			const deps = ((s.schema.dependencies ?? []) as (string | { name: string })[])
				.map(d => (typeof d === "string" ? d : d.name))
				.filter(d => !known.has(d));
			return deps.length ? `${s.fullName} (waiting for ${deps.join(", ")})` : s.fullName;
		});
	return waiting.length ? { ok: false, error: `starting: ${waiting.join("; ")}` } : { ok: true };
}

async function timed(check: () => Promise<unknown>): Promise<Check> {
	const t = Date.now();
	try {
		await Promise.race([
			check(),
			new Promise((_, rej) => setTimeout(() => rej(new Error("timeout")), 2000).unref())
		]);
		return { ok: true, ms: Date.now() - t };
	} catch (err: any) {
		return { ok: false, ms: Date.now() - t, error: err.message };
	}
}

export const HealthService: ServiceSchema = {
	name: "health",
	actions: {
		live: {
			visibility: "public",
			handler(this: Service) {
				return { status: "ok", nodeID: this.broker.nodeID, uptime: Math.round(process.uptime()) };
			}
		},
		ready: {
			visibility: "public",
			async handler(this: Service): Promise<NodeReadiness> {
				const broker: any = this.broker;
				const checks: Record<string, Check> = {
					database: await timed(async () => (await getDb()).query("SELECT 1"))
				};
				if (broker.transit) checks.transporter = { ok: !!broker.transit.connected };
				const channels = broker.channelAdapter;
				if (channels) checks.channels = { ok: !!channels.connected };
				if (broker.cacher?.client?.ping) checks.cache = await timed(() => broker.cacher.client.ping());
				checks.services = startingServices(this.broker);
				const ready = Object.values(checks).every(c => c.ok);
				return { status: ready ? "ready" : "not ready", nodeID: broker.nodeID, checks };
			}
		}
	}
};

// A tiny per-process HTTP endpoint for orchestrators (docker compose health checks): /health, /ready, /metrics.
export function startHealthServer(broker: ServiceBroker, port: number): http.Server {
	const server = http.createServer(async (req, res) => {
		try {
			if (req.url === "/health")
				return send(res, 200, await broker.call("health.live", {}, { nodeID: broker.nodeID }));
			if (req.url === "/ready") {
				const r: any = await broker.call("health.ready", {}, { nodeID: broker.nodeID });
				return send(res, r.status === "ready" ? 200 : 503, r);
			}
			if (req.url === "/metrics") {
				res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" });
				return res.end(prometheusText(broker));
			}
			send(res, 404, { error: { code: "NOT_FOUND", message: "unknown path" } });
		} catch (err: any) {
			send(res, 503, { error: { code: "UNAVAILABLE", message: err.message } });
		}
	});
	server.listen(port);
	return server;
}

function send(res: http.ServerResponse, status: number, body: unknown) {
	res.writeHead(status, { "Content-Type": "application/json" });
	res.end(JSON.stringify(body));
}
