// Broker options, all derived from the environment (lib/config.ts): the same code runs embedded or as a cluster.
import type { BrokerOptions, Errors, LogLevels, ServiceBroker } from "moleculer";
import { Config, getConfig } from "./lib/config";
import { AuthzMiddleware } from "./lib/authz";
import { cacheKeygen } from "./lib/cache-keys";
import { SafeConsoleLogger } from "./lib/log-safe";
import { DependencyErrorsMiddleware, nodeFailed } from "./lib/errors";
import { ExternalCallsMiddleware } from "./lib/external-calls";
import { channelsMiddleware } from "./lib/events/channels";
import { replCommands } from "./lib/repl-commands";
import { PrometheusText } from "./lib/metrics";
import { PlatformValidator } from "./lib/validator";
import { ResponsesMiddleware } from "./lib/response";
import { TransitEncryption } from "./lib/transit-encryption";
import { StopDeadline } from "./lib/in-flight";
import { CompactAuthMeta } from "./lib/compact-auth";
import { ClusterAmqpTransporter, ClusterCallRouting } from "./lib/transporter";

export function brokerOptions(config: Config = getConfig()): BrokerOptions {
	const cacheOptions = { ttl: config.cacheTtl, keygen: cacheKeygen };
	return {
		namespace: config.namespace,
		nodeID: config.nodeID,
		// Client text in any log line is escaped (lib/log-safe.ts).
		logger: new SafeConsoleLogger({
			level: config.logLevel as LogLevels,
			formatter: "short",
			colors: process.stdout.isTTY
		}),

		// Moleculer's AMQP defaults (prefetch 1, Nagle on) serialize requests: measured 23 req/s vs ~6,000 tuned.
		transporter: config.transporterUrl
			? new ClusterAmqpTransporter({
					url: config.transporterUrl,
					prefetch: config.transporterPrefetch,
					socketOptions: { noDelay: true }
				} as any)
			: undefined,
		// Requests go to one RabbitMQ queue per action that all its replicas consume, acked after the answer: a replica
		// that dies hands its unanswered requests to another at once (lib/transporter.ts). Calls this node can answer
		// stay in process (ClusterCallRouting below).
		disableBalancer: !!config.transporterUrl,
		// Keys that no two different requests share (lib/cache-keys.ts).
		cacher: !config.cacheEnabled
			? undefined
			: config.cacherUrl
				? {
						type: "Redis",
						options: {
							...cacheOptions,
							redis: config.cacherUrl,
							prefix: `${config.namespace}-cache`
						} as any
					}
				: { type: "Memory", options: cacheOptions as any },
		serializer: "JSON",
		validator: new PlatformValidator() as any,

		requestTimeout: config.requestTimeout,
		// A node that dies without a goodbye (SIGKILL, OOM, lost host) is dropped from the registries by its missing
		// heartbeats: with 2 s / 6 s (checked every 6 s), 4-14 s after its death. Requests do not wait for that (they
		// go to shared queues and RabbitMQ requeues what the dead node held); broadcasts to it and the node list do.
		heartbeatInterval: 2,
		heartbeatTimeout: 6,
		// Other nodes learn this node's services and event listeners from its INFO, which Moleculer sends a second after
		// the last service registered (debounced); meanwhile a broadcast, such as a dropped cache's, passed it by. The
		// INFO goes out as soon as the node has started.
		started: broker => announceServices(broker),
		// Only errors Moleculer marks retryable (node gone, timeout on a lost request) are retried.
		retryPolicy: {
			enabled: config.requestRetries > 0,
			retries: config.requestRetries,
			delay: 100,
			maxDelay: 2000,
			factor: 2,
			check: (err: Error) => !!(err as Errors.MoleculerRetryableError).retryable
		},
		// Opens an endpoint for failures of its node only: a service's report of an upstream failure (ExternalFailure) is
		// one organization's trouble, handled by that service (AI: the deployment's cooldown), never everyone's 503.
		circuitBreaker: {
			enabled: true,
			threshold: 0.5,
			minRequestCount: 20,
			windowTime: 60,
			halfOpenTime: 10_000,
			check: nodeFailed
		},
		// Graceful shutdown: stop() waits for in-flight requests before leaving the cluster, 15 s for all its waits
		// together (StopDeadline).
		tracking: { enabled: true, shutdownTimeout: 15_000 },
		registry: { strategy: "RoundRobin", preferLocal: true },

		metrics: { enabled: true, reporter: new (PrometheusText as any)({ port: config.metricsPort ?? null }) },
		tracing: { enabled: config.tracing, exporter: config.tracing ? { type: "Console" } : undefined },

		// Moleculer's own middlewares listed explicitly to place ours: the first wraps innermost. Authorization sits
		// outside the cacher, so a cached answer is never served to a caller the action would refuse.
		internalMiddlewares: false,
		middlewares: [
			...(config.transporterUrl ? [ClusterCallRouting()] : []),
			ResponsesMiddleware,
			"ActionHook",
			DependencyErrorsMiddleware as any,
			"Validator",
			"Bulkhead",
			"Cacher",
			AuthzMiddleware,
			"ContextTracker",
			"CircuitBreaker",
			"Timeout",
			"Retry",
			// Calls to actions marked `external` are sent once and keep the handler's own deadline (lib/external-calls.ts).
			ExternalCallsMiddleware,
			"Fallback",
			"ErrorHandler",
			"Tracing",
			"Metrics",
			"Debounce",
			"Throttle",
			channelsMiddleware(config),
			...(config.transporterUrl ? [CompactAuthMeta()] : []),
			...(config.transporterUrl && config.transitKey ? [TransitEncryption(config.transitKey)] : []),
			// After ContextTracker: its stop hooks run before the tracker's waits (lib/in-flight.ts).
			StopDeadline
		] as any[],
		replOptions: { customCommands: replCommands } as any,
		skipProcessEventRegistration: true
	};
}

export default brokerOptions;

// Sends now the INFO that Moleculer's debounced service-change handler would send a second later (that one is
// cancelled), resolving once it is out: with the queues of the node's actions consumed first (lib/transporter.ts).
function announceServices(broker: ServiceBroker): Promise<void> | undefined {
	const b = broker as unknown as {
		localServiceChanged: { cancel?: () => void };
		registry: { discoverer: { sendLocalNodeInfo: () => Promise<void> } };
	};
	if (!broker.transit) return undefined;
	b.localServiceChanged.cancel?.();
	return b.registry.discoverer.sendLocalNodeInfo();
}
