// Prometheus metrics rendered in-process: the gateway serves them at /metrics and every node's health port too,
// instead of each process opening a port of its own (which would clash when replicas share a host).
import { MetricReporters, ServiceBroker } from "moleculer";

const Prometheus: any = (MetricReporters as any).Prometheus;
const Base: any = (MetricReporters as any).Base;

// Moleculer's common metrics that describe the host rather than the platform: its name, network addresses and MACs,
// the OS user and home directory, the process's command line (which may carry secrets). Never exported.
const HOST_DETAILS = ["os.hostname", "os.network.**", "os.user.**", "process.arguments"];

export class PrometheusText extends Prometheus {
	constructor(opts: Record<string, unknown> = {}) {
		super({ ...opts, excludes: [...HOST_DETAILS, ...((opts.excludes as string[]) ?? [])] });
	}

	init(registry: any) {
		if ((this as any).opts.port) return super.init(registry);
		Base.prototype.init.call(this, registry);
		(this as any).defaultLabels = { namespace: registry.broker.namespace, nodeID: registry.broker.nodeID };
	}
	stop() {
		return (this as any).server ? super.stop() : Promise.resolve();
	}
}

export function prometheusText(broker: ServiceBroker): string {
	const reporter = ((broker as any).metrics?.reporter ?? []).find((r: any) => r instanceof PrometheusText);
	return reporter ? reporter.generatePrometheusResponse() : "";
}

// A metric of this broker, registered on first use: a gateway service restarted on the same broker goes on counting
// in the same metrics. Undefined when the broker has metrics off.
export function brokerMetric<T>(broker: ServiceBroker, def: { type: string; name: string } & Record<string, unknown>) {
	const metrics = broker.isMetricsEnabled() ? broker.metrics : undefined;
	return ((metrics?.getMetric(def.name) ?? metrics?.register(def as any)) as T | null | undefined) ?? undefined;
}
