// Routing among deployments (the same model on several providers) and their health as judged from live traffic:
// a deployment that keeps failing is cooled down, then tried again.
export type Strategy = "priority" | "weighted" | "latency" | "least-busy" | "cost";

export interface Deployment {
	id: string; // ai_deployments row
	provider_id: string;
	name: string;
	provider_model: string;
	priority: number;
	weight: number;
	input_price: number;
	output_price: number;
	cached_input_price: number;
	cache_write_price: number | null;
	tags: string[];
}

interface Health {
	failures: number;
	coolUntil: number;
	latencyMs?: number; // moving average
	inFlight: number;
	status: "healthy" | "unhealthy";
}

const FAILURES_TO_COOL = 3;

export class DeploymentHealth {
	private byId = new Map<string, Health>();

	private get(id: string): Health {
		let h = this.byId.get(id);
		if (!h) this.byId.set(id, (h = { failures: 0, coolUntil: 0, inFlight: 0, status: "healthy" }));
		return h;
	}

	available(id: string, now = Date.now()) {
		return this.get(id).coolUntil <= now;
	}

	begin(id: string) {
		this.get(id).inFlight++;
	}

	end(id: string) {
		const h = this.get(id);
		h.inFlight = Math.max(0, h.inFlight - 1);
	}

	// Returns the new status when it changed, for the ai.provider.health.changed event.
	success(id: string, latencyMs: number): "healthy" | undefined {
		const h = this.get(id);
		h.failures = 0;
		h.latencyMs = h.latencyMs === undefined ? latencyMs : h.latencyMs * 0.8 + latencyMs * 0.2;
		if (h.status !== "healthy") {
			h.status = "healthy";
			h.coolUntil = 0;
			return "healthy";
		}
	}

	failure(id: string, cooldownMs: number, now = Date.now()): "unhealthy" | undefined {
		const h = this.get(id);
		h.failures++;
		if (h.failures >= FAILURES_TO_COOL) {
			h.coolUntil = now + cooldownMs;
			h.failures = 0;
			if (h.status !== "unhealthy") {
				h.status = "unhealthy";
				return "unhealthy";
			}
		}
	}

	// What is known of a deployment, without starting to track it.
	peek(id: string): Readonly<Health> | undefined {
		return this.byId.get(id);
	}

	snapshot(id: string) {
		return { ...this.get(id) };
	}

	// Orders the deployments to try, by strategy; cooled-down ones go last (tried only if nothing else is left).
	order(deployments: Deployment[], strategy: Strategy, random = Math.random): Deployment[] {
		const now = Date.now();
		const ready = deployments.filter(d => this.available(d.id, now));
		const cooled = deployments.filter(d => !this.available(d.id, now));
		let sorted: Deployment[];
		switch (strategy) {
			case "weighted":
				sorted = weightedShuffle(ready, random);
				break;
			case "latency":
				sorted = [...ready].sort((a, b) => (this.get(a.id).latencyMs ?? 0) - (this.get(b.id).latencyMs ?? 0));
				break;
			case "least-busy":
				sorted = [...ready].sort(
					(a, b) => this.get(a.id).inFlight - this.get(b.id).inFlight || a.priority - b.priority
				);
				break;
			case "cost":
				sorted = [...ready].sort(
					(a, b) =>
						Number(a.input_price) +
						Number(a.output_price) -
						(Number(b.input_price) + Number(b.output_price))
				);
				break;
			default:
				sorted = [...ready].sort((a, b) => a.priority - b.priority);
		}
		return [...sorted, ...cooled.sort((a, b) => this.get(a.id).coolUntil - this.get(b.id).coolUntil)];
	}
}

function weightedShuffle(items: Deployment[], random: () => number): Deployment[] {
	const pool = items.filter(d => d.weight > 0);
	const out: Deployment[] = [];
	while (pool.length) {
		const total = pool.reduce((n, d) => n + d.weight, 0);
		let r = random() * total;
		const i = pool.findIndex(d => (r -= d.weight) < 0);
		out.push(...pool.splice(i < 0 ? pool.length - 1 : i, 1));
	}
	return out.concat(items.filter(d => d.weight <= 0));
}

export interface Attempt {
	model: string;
	deployment: Deployment;
}

// Deployments to try, model by model along the fallback chain, each model's ordered by its routing rule (the one
// for a tag the request carries, else the model's default).
export function planAttempts(
	health: DeploymentHealth,
	cfg: {
		rules: { model: string; tag?: string | null; strategy?: string | null }[];
		models: (Deployment & { kind: string })[];
	},
	chain: string[],
	kind: string,
	tags: string[]
): Attempt[] {
	return chain.flatMap(model => {
		const rule =
			cfg.rules.find(r => r.model === model && r.tag && tags.includes(r.tag)) ??
			cfg.rules.find(r => r.model === model && !r.tag);
		const deployments = cfg.models.filter(m => m.name === model && m.kind === kind);
		return health
			.order(deployments, (rule?.strategy ?? "priority") as Strategy)
			.map(deployment => ({ model, deployment }));
	});
}
