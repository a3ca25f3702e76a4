// Load shedding: a cap on the API requests one gateway has in flight. A node offered more than it can serve queues
// every request in its memory (tens of KiB each) and answers all of them late; past the cap a request is refused at
// once with 503 and Retry-After, so memory stays bounded and the requests taken are served in time. Health checks,
// the UI's files, the socket and /metrics are never counted nor refused (the gateway applies it to API paths only).
import type { ServerResponse } from "http";
import type { ServiceBroker } from "moleculer";
import { Idle } from "../../lib/in-flight";
import { brokerMetric } from "../../lib/metrics";

export const SHED_METRIC = "gateway.requests.shed.total";
export const IN_FLIGHT_METRIC = "gateway.requests.in_flight";
const SHED_HELP = "API requests refused with 503: the gateway had its maximum in flight";
const IN_FLIGHT_HELP = "API requests in flight on this gateway";

// The error a shed request gets, in the route's own error shape (the gateway's sendError or an API's onError).
export function overloadedError(retryAfterSec: number) {
	return {
		code: 503,
		type: "OVERLOADED",
		message: `the server is at capacity; retry after ${retryAfterSec} s`,
		data: { retryAfter: retryAfterSec }
	};
}

// What an API request gets from a gateway that is stopping: another replica answers the retry.
export function stoppingError() {
	return {
		code: 503,
		type: "SHUTTING_DOWN",
		message: "the server is stopping; retry",
		data: { retryAfter: 0 }
	};
}

const LOG_EVERY_MS = 10_000;

interface Counter {
	increment(labels?: unknown, value?: number): void;
}
interface Gauge {
	set(value: number): void;
}

export class InFlightCap {
	private count = 0;
	private readonly idle = new Idle(() => this.count);
	private unreported = 0;
	private reportedAt = 0;
	private readonly shed?: Counter;
	private readonly inFlightGauge?: Gauge;

	// `max` 0: no cap (the count and the metric are still kept).
	constructor(
		readonly max: number,
		broker?: ServiceBroker
	) {
		if (!broker) return;
		this.shed = brokerMetric<Counter>(broker, { type: "counter", name: SHED_METRIC, description: SHED_HELP });
		this.inFlightGauge = brokerMetric<Gauge>(broker, {
			type: "gauge",
			name: IN_FLIGHT_METRIC,
			description: IN_FLIGHT_HELP
		});
	}

	// Counts a refusal; every LOG_EVERY_MS, the number refused since the last report (else 0).
	noteShed(now = Date.now()): number {
		this.shed?.increment();
		this.unreported++;
		if (now - this.reportedAt < LOG_EVERY_MS) return 0;
		const n = this.unreported;
		this.unreported = 0;
		this.reportedAt = now;
		return n;
	}

	get inFlight(): number {
		return this.count;
	}

	// Takes a slot for the request until its response ends (sent, or the connection closed); false when full.
	enter(res: ServerResponse): boolean {
		if (this.max > 0 && this.count >= this.max) return false;
		// Counted apart from the gauge: `gauge?.set(++count)` would not count at all with metrics off.
		this.count++;
		this.inFlightGauge?.set(this.count);
		// "close" follows "finish", and also comes alone when the client goes away first: the slot is freed once.
		res.once("close", () => {
			this.count--;
			this.inFlightGauge?.set(this.count);
			this.idle.notify();
		});
		return true;
	}

	// True once no request is in flight, false when `ms` passed first (a stopping gateway lets them finish).
	drained(ms: number): Promise<boolean> {
		return this.idle.wait(ms);
	}
}
