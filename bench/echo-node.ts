// Scenario (d), the serving side of the baseline: a bare Moleculer broker (defaults, no platform middlewares,
// metrics, cacher, DB) with one trivial `echo` action, on the platform's exact transporter settings.
// For diagnosis only (bench/explore-bare.ts): with ECHO_PG_URL it also offers `echo.pg` (one indexed SELECT on a
// plain pg pool), with ECHO_REDIS_URL `echo.redis` (one GET).
import { ServiceBroker } from "moleculer";
import pg from "pg";
import Redis from "ioredis";
import { bareBrokerOptions } from "./bare";

// ECHO_PLATFORM_HEARTBEAT=1 (diagnosis next to platform nodes): the platform's 2 s / 6 s heartbeats.
const heartbeat = process.env.ECHO_PLATFORM_HEARTBEAT ? { heartbeatInterval: 2, heartbeatTimeout: 6 } : {};
const broker = new ServiceBroker({ ...bareBrokerOptions(process.env), ...heartbeat, nodeID: process.env.NODE_ID });
const pool = process.env.ECHO_PG_URL ? new pg.Pool({ connectionString: process.env.ECHO_PG_URL, max: 10 }) : undefined;
const redis = process.env.ECHO_REDIS_URL ? new Redis(process.env.ECHO_REDIS_URL) : undefined;
broker.createService({
	name: "echo",
	actions: {
		echo: {
			handler(ctx: any) {
				return ctx.params;
			}
		},
		pg: {
			async handler(ctx: any) {
				const { rows } = await pool!.query("SELECT * FROM pg_class WHERE relname = $1 LIMIT 1", [
					ctx.params.name ?? "pg_class"
				]);
				return { relname: rows[0]?.relname };
			}
		},
		// The same SELECT as a named (prepared) statement: parsed and planned once per connection.
		pgprep: {
			async handler(ctx: any) {
				const { rows } = await pool!.query({
					name: "echo_pg",
					text: "SELECT * FROM pg_class WHERE relname = $1 LIMIT 1",
					values: [ctx.params.name ?? "pg_class"]
				});
				return { relname: rows[0]?.relname };
			}
		},
		redis: {
			async handler(ctx: any) {
				return { value: await redis!.get(ctx.params.key ?? "bench-missing-key") };
			}
		}
	}
});
const stop = () =>
	broker
		.stop()
		.then(() => Promise.all([pool?.end(), redis?.quit()]))
		.finally(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
broker.start().then(() => process.stdout.write(`echo node ${broker.nodeID} up\n`));
