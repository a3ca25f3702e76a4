// Requests and their latency as the client saw them, per mounted route ("api", "v1", …) and status, counted where
// every HTTP request passes (the gateway's httpHandler), whichever path answered it: moleculer-web's, or a route's
// direct aliases, which no `gateway.rest` action call counts. Labels are the route's mount and the status code,
// never the full path, a user or an organization, so their number stays small.
import type { ServiceBroker } from "moleculer";
import { brokerMetric } from "../../lib/metrics";

export const REQUESTS_METRIC = "gateway.http.requests.total";
export const DURATION_METRIC = "gateway.http.request.duration";

interface Counter {
	increment(labels?: Record<string, unknown>, value?: number): void;
}
interface Histogram {
	observe(value: number, labels?: Record<string, unknown>): void;
}

export class HttpMetrics {
	private readonly requests?: Counter;
	private readonly duration?: Histogram;

	constructor(broker: ServiceBroker) {
		this.requests = brokerMetric<Counter>(broker, {
			type: "counter",
			name: REQUESTS_METRIC,
			labelNames: ["route", "status"],
			description: "HTTP API requests answered, by mounted route and status code"
		});
		this.duration = brokerMetric<Histogram>(broker, {
			type: "histogram",
			name: DURATION_METRIC,
			labelNames: ["route"],
			unit: "millisecond",
			description: "Time from an HTTP API request's arrival to its response's end (a stream's last byte)",
			// Whole numbers: Moleculer prints the buckets in its object key order, which is numeric only for integers.
			buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]
		});
	}

	record(route: string, status: number, ms: number): void {
		this.requests?.increment({ route, status });
		this.duration?.observe(ms, { route });
	}
}
