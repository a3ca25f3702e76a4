// Which deployment a completion tries first, by the organization's routing strategy, and how live failures cool a
// deployment down and success brings it back. Pure logic: no infrastructure.
import { DeploymentHealth, Deployment } from "../../services/ai/router";

const dep = (id: string, over: Partial<Deployment> = {}): Deployment => ({
	id,
	provider_id: `p-${id}`,
	name: "smart",
	provider_model: id,
	priority: 1,
	weight: 1,
	input_price: 1,
	output_price: 1,
	cached_input_price: 0,
	cache_write_price: null,
	tags: [],
	...over
});
const ids = (ds: Deployment[]) => ds.map(d => d.id);

describe("routing strategies", () => {
	test("priority: the lowest priority number is tried first", () => {
		const h = new DeploymentHealth();
		const order = h.order(
			[dep("b", { priority: 2 }), dep("c", { priority: 3 }), dep("a", { priority: 1 })],
			"priority"
		);
		expect(ids(order)).toEqual(["a", "b", "c"]);
	});

	test("cost: the cheapest input + output price first, prices as PostgreSQL returns them (strings)", () => {
		const h = new DeploymentHealth();
		const ds = [
			dep("dear", { input_price: "10" as any, output_price: "30" as any }),
			dep("cheap", { input_price: "0.5" as any, output_price: "1.5" as any }),
			dep("mid", { input_price: 3, output_price: 9 })
		];
		expect(ids(h.order(ds, "cost"))).toEqual(["cheap", "mid", "dear"]);
	});

	test("latency: the faster moving average first; a deployment never measured is tried early to get a figure", () => {
		const h = new DeploymentHealth();
		h.success("slow", 900);
		h.success("fast", 100);
		expect(ids(h.order([dep("slow"), dep("fast"), dep("new")], "latency"))).toEqual(["new", "fast", "slow"]);
		// One quick answer does not erase a history of slow ones (moving average), but many do.
		h.success("slow", 50);
		expect(ids(h.order([dep("slow"), dep("fast")], "latency"))).toEqual(["fast", "slow"]);
		for (let i = 0; i < 20; i++) h.success("slow", 50);
		expect(ids(h.order([dep("slow"), dep("fast")], "latency"))).toEqual(["slow", "fast"]);
	});

	test("least-busy: fewest requests in flight first, ties broken by priority; finished requests free their place", () => {
		const h = new DeploymentHealth();
		const ds = [dep("a", { priority: 1 }), dep("b", { priority: 2 }), dep("c", { priority: 3 })];
		h.begin("a");
		h.begin("a");
		h.begin("b");
		expect(ids(h.order(ds, "least-busy"))).toEqual(["c", "b", "a"]);
		h.end("a");
		h.end("a");
		h.end("a"); // an extra end never makes a deployment look less than idle
		expect(ids(h.order(ds, "least-busy"))).toEqual(["a", "c", "b"]);
	});

	test("weighted: chosen in proportion to weight; weight 0 only after every weighted one", () => {
		const h = new DeploymentHealth();
		const ds = [dep("light", { weight: 1 }), dep("off", { weight: 0 }), dep("heavy", { weight: 3 })];
		// random() in [0, 1) picks along the cumulative weights: light covers [0, 0.25), heavy [0.25, 1).
		expect(ids(h.order(ds, "weighted", () => 0.1))).toEqual(["light", "heavy", "off"]);
		expect(ids(h.order(ds, "weighted", () => 0.3))).toEqual(["heavy", "light", "off"]);
		// Over many draws the first choice follows the weights.
		let seed = 7;
		const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
		let heavyFirst = 0;
		for (let i = 0; i < 2000; i++) if (h.order(ds, "weighted", random)[0].id === "heavy") heavyFirst++;
		expect(heavyFirst / 2000).toBeGreaterThan(0.7);
		expect(heavyFirst / 2000).toBeLessThan(0.8);
	});
});

describe("deployment health from live traffic", () => {
	test("three failures in a row cool a deployment down: it goes last whatever the strategy, and the change is reported once", () => {
		const h = new DeploymentHealth();
		const ds = [dep("a", { priority: 1 }), dep("b", { priority: 2 })];
		expect(h.failure("a", 60_000)).toBeUndefined();
		expect(h.failure("a", 60_000)).toBeUndefined();
		expect(ids(h.order(ds, "priority"))).toEqual(["a", "b"]); // two failures are not enough
		expect(h.failure("a", 60_000)).toBe("unhealthy");
		expect(h.available("a")).toBe(false);
		for (const s of ["priority", "cost", "latency", "least-busy", "weighted"] as const)
			expect(ids(h.order(ds, s))[1]).toBe("a");
		// Still failing after its cooldown: cooled again, but not announced a second time.
		for (let i = 0; i < 3; i++) expect(h.failure("a", 60_000)).toBeUndefined();
	});

	test("a success between failures resets the count", () => {
		const h = new DeploymentHealth();
		h.failure("a", 60_000);
		h.failure("a", 60_000);
		h.success("a", 10);
		h.failure("a", 60_000);
		h.failure("a", 60_000);
		expect(h.available("a")).toBe(true);
	});

	test("a cooled deployment is tried again once its cooldown has passed, and a success reports it healthy", () => {
		const h = new DeploymentHealth();
		const longAgo = Date.now() - 120_000;
		for (let i = 0; i < 3; i++) h.failure("a", 60_000, longAgo); // cooled until a minute ago
		expect(h.available("a")).toBe(true);
		expect(ids(h.order([dep("a", { priority: 1 }), dep("b", { priority: 2 })], "priority"))).toEqual(["a", "b"]);
		expect(h.success("a", 20)).toBe("healthy");
		expect(h.success("a", 20)).toBeUndefined();
	});

	test("when every deployment is cooled down, they are still tried, the one recovering soonest first", () => {
		const h = new DeploymentHealth();
		const now = Date.now();
		for (let i = 0; i < 3; i++) h.failure("late", 120_000, now);
		for (let i = 0; i < 3; i++) h.failure("soon", 30_000, now);
		expect(ids(h.order([dep("late"), dep("soon")], "priority"))).toEqual(["soon", "late"]);
	});
});
