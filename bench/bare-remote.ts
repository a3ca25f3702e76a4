// The baseline of the REST-read bench (rest-read.ts): a bare moleculer-web route in one process calling an action of
// another process over the platform's RabbitMQ tuning (bareBrokerOptions), nothing of the platform around it.
// ROLE=web serves GET /api/me on PORT; ROLE=node answers `bare.me` with a body the size of auth.me's.
import { ServiceBroker } from "moleculer";
import ApiGateway from "moleculer-web";
import { bareBrokerOptions } from "./bare";

const role = process.env.ROLE ?? "web";
const broker = new ServiceBroker({ ...bareBrokerOptions(process.env), nodeID: `bare-${role}-${process.pid}` });
if (role === "node")
	broker.createService({
		name: "bare",
		actions: {
			me: () => ({
				user: { id: "00000000-0000-4000-8000-000000000000", email: "bench@example.com", name: "Bench" },
				organizations: [
					{
						id: "00000000-0000-4000-8000-000000000001",
						name: "Bench",
						slug: "bench",
						personal: true,
						role: "owner"
					}
				],
				role: "owner"
			})
		}
	});
else
	broker.createService({
		name: "web",
		mixins: [ApiGateway as any],
		settings: {
			port: Number(process.env.PORT),
			routes: [{ path: "/api", aliases: { "GET /me": "bare.me" } }],
			logRequest: null,
			logResponse: null
		}
	});
broker.start().then(async () => {
	if (role === "web") await broker.waitForServices(["bare"], 30_000);
	console.log(`bare ${role} up`);
});
process.on("SIGTERM", () => broker.stop().then(() => process.exit(0)));
