// A node tells the others about its services and event listeners (its INFO) once it has started, not a second later
// when Moleculer's debounced service-change handler would: a broadcast sent in that second (a dropped cache, changed
// limits) passed the new node by. Two platform brokers over real RabbitMQ.
import { ServiceBroker } from "moleculer";
import { describeWith, uniqueNamespace } from "../helpers/infra";
import { deleteRabbitObjects } from "../helpers/rabbit";
import { clusterBrokerOptions } from "../helpers/cluster";
import { waitUntil } from "../helpers/wait";

interface InfoPacket {
	type: string;
	payload: { services?: { events?: Record<string, unknown> }[] };
}

describeWith(["rabbitmq"])("a node's INFO after it starts", () => {
	const NAMESPACE = uniqueNamespace("discovery");
	const brokers: ServiceBroker[] = [];

	afterAll(async () => {
		await Promise.all(brokers.map(b => b.stop().catch(() => undefined)));
		await deleteRabbitObjects([NAMESPACE]).catch(() => undefined);
	});

	test("names its event listeners by the time start() resolves, and the other node knows them", async () => {
		const other = new ServiceBroker({ ...clusterBrokerOptions(NAMESPACE, `other-${NAMESPACE}`), logger: false });
		brokers.push(other);
		await other.start();

		const node = new ServiceBroker({ ...clusterBrokerOptions(NAMESPACE, `node-${NAMESPACE}`), logger: false });
		brokers.push(node);
		node.createService({ name: "listener", events: { "discovery.changed"() {} } });
		const sent: InfoPacket[] = [];
		const tx = (node.transit as unknown as { tx: { publish: (packet: InfoPacket) => Promise<void> } }).tx;
		const publish = tx.publish.bind(tx);
		tx.publish = packet => {
			if (packet.type === "INFO") sent.push(packet);
			return publish(packet);
		};
		await node.start();

		const names = (p: InfoPacket) => (p.payload.services ?? []).some(s => s.events?.["discovery.changed"]);
		expect(sent.some(names)).toBe(true);
		await waitUntil(
			"the other node to know the listener",
			async () => other.registry.events.getAllEndpoints("discovery.changed").map(ep => ep.id),
			ids => ids.includes(node.nodeID)
		);
	}, 60_000);
});
