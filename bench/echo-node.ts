// Scenario (d), the serving side of the baseline: a bare Moleculer broker (defaults, no platform middlewares,
// metrics, cacher, DB) with one trivial `echo` action, on the platform's exact transporter settings.
import { ServiceBroker } from "moleculer";
import { bareBrokerOptions } from "./bare";

const broker = new ServiceBroker({ ...bareBrokerOptions(process.env), nodeID: process.env.NODE_ID });
broker.createService({
	name: "echo",
	actions: {
		echo: {
			handler(ctx: any) {
				return ctx.params;
			}
		}
	}
});
const stop = () => broker.stop().finally(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
broker.start().then(() => process.stdout.write(`echo node ${broker.nodeID} up\n`));
