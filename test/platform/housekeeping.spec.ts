// HousekeepingMixin: a service's periodic clean-up runs while the service runs, keeps running after a failed round,
// and stops with the service.
import { ServiceBroker } from "moleculer";
import { HousekeepingMixin } from "../../mixins/housekeeping.mixin";

describe("housekeeping mixin", () => {
	test("runs the method every interval, survives a failing round, and stops with the service", async () => {
		const broker = new ServiceBroker({ logger: false });
		let rounds = 0;
		broker.createService({
			name: "tidy",
			mixins: [HousekeepingMixin("sweep", 20, "sweep")],
			methods: {
				async sweep() {
					rounds++;
					if (rounds === 1) throw new Error("database away");
				}
			}
		} as any);
		await broker.start();
		const deadline = Date.now() + 5000;
		while (rounds < 3 && Date.now() < deadline) await new Promise(r => setTimeout(r, 10));
		expect(rounds).toBeGreaterThanOrEqual(3);
		await broker.stop();
		const after = rounds;
		await new Promise(r => setTimeout(r, 100));
		expect(rounds).toBe(after);
	});
});
