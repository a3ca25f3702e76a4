// Requests running on this replica, by id, so a cancellation announced to every replica (or a stopping service)
// can abort them where they run; and waiting for work to end, which is what a graceful stop does first.
import type { Middleware, Service, ServiceBroker } from "moleculer";

// Callers waiting for a count of running work to reach zero; the owner calls `notify` whenever the count drops.
export class Idle {
	private waiters: Array<() => void> = [];

	constructor(private readonly busy: () => number) {}

	notify(): void {
		if (this.busy() === 0) for (const resolve of this.waiters.splice(0)) resolve();
	}

	// True once nothing runs, false when `ms` passed first.
	wait(ms: number): Promise<boolean> {
		if (this.busy() === 0) return Promise.resolve(true);
		return new Promise(resolve => {
			const done = () => (clearTimeout(timer), resolve(true));
			const timer = setTimeout(() => {
				this.waiters = this.waiters.filter(w => w !== done);
				resolve(false);
			}, ms);
			this.waiters.push(done);
		});
	}
}

export class InFlight {
	private readonly running = new Map<string, AbortController>();
	private readonly idle = new Idle(() => this.running.size);

	add(id: string, controller: AbortController): void {
		this.running.set(id, controller);
	}

	delete(id: string): void {
		if (this.running.delete(id)) this.idle.notify();
	}

	abort(id: string, reason: unknown): boolean {
		const c = this.running.get(id);
		c?.abort(reason);
		return !!c;
	}

	abortAll(reason: unknown): number {
		for (const c of this.running.values()) c.abort(reason);
		return this.running.size;
	}

	// Resolves true once nothing runs, false when `ms` passed first: a stopping replica lets what it streams finish.
	settled(ms: number): Promise<boolean> {
		return this.idle.wait(ms);
	}

	get size(): number {
		return this.running.size;
	}
}

// One budget for a graceful stop: the broker's `tracking.shutdownTimeout` counts from the moment it starts to stop,
// for all of its waits together. Moleculer waits for its outgoing calls, then for each service's running calls, and a
// service may then drain what those calls left running (streams): with a full timeout each, the waits added up to
// three times the budget, past the process's forced exit, which then lost what services write as they stop
// (completion logs). What is left after the budget is aborted, and the services' own stopping runs in the time left.
const stopStarted = new WeakMap<ServiceBroker, number>();
const ownTimeouts = new WeakMap<Service, number | undefined>();

// Milliseconds left of the broker's graceful-stop budget (all of it while the broker is not stopping).
export function stopTimeLeft(broker: ServiceBroker): number {
	const budget = broker.options.tracking?.shutdownTimeout ?? 10_000;
	const started = stopStarted.get(broker);
	return started === undefined ? budget : Math.max(0, started + budget - Date.now());
}

// Listed after Moleculer's ContextTracker: stopping hooks run in reverse order, so this one runs before its waits.
export const StopDeadline: Middleware = {
	name: "StopDeadline",
	async stopping(broker: ServiceBroker) {
		stopStarted.set(broker, Date.now());
	},
	// ContextTracker waits for a service's calls up to the service's own $shutdownTimeout when it has one: at most the
	// time left (at least 1 ms: 0 would mean "none set"), and the service's own setting again once it has stopped. A
	// service destroyed alone, outside a stop, keeps its full timeout.
	async serviceStopping(service: Service) {
		if (!stopStarted.has(service.broker)) return;
		const own = service.settings.$shutdownTimeout as number | undefined;
		ownTimeouts.set(service, own);
		const left = stopTimeLeft(service.broker);
		service.settings.$shutdownTimeout = Math.max(1, own ? Math.min(own, left) : left);
	},
	async serviceStopped(service: Service) {
		if (ownTimeouts.has(service)) service.settings.$shutdownTimeout = ownTimeouts.get(service);
		ownTimeouts.delete(service);
	},
	async stopped(broker: ServiceBroker) {
		stopStarted.delete(broker);
	}
};
