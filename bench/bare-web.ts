// The baseline of the layers bench: a bare moleculer-web route calling a local action that does the same read as
// teams.get (one row by id and organization from PostgreSQL) with nothing of the platform around it.
import pg from "pg";
import { ServiceBroker } from "moleculer";
import ApiGateway from "moleculer-web";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const broker = new ServiceBroker({ nodeID: "bare-web", logger: false });
broker.createService({
	name: "teams",
	actions: {
		get: {
			params: { id: "string", org: "string" },
			async handler(ctx: any) {
				const { rows } = await pool.query(
					"SELECT id, organization_id, name, description, created_at, updated_at FROM teams WHERE id = $1 AND organization_id = $2",
					[ctx.params.id, ctx.params.org]
				);
				return rows[0];
			}
		}
	}
});
broker.createService({
	name: "web",
	mixins: [ApiGateway as any],
	settings: {
		port: Number(process.env.PORT),
		routes: [{ path: "/api", aliases: { "GET /teams/:org/:id": "teams.get" } }],
		logRequest: null,
		logResponse: null
	}
});
broker.start().then(() => console.log("bare web up"));
process.on("SIGTERM", () =>
	broker
		.stop()
		.then(() => pool.end())
		.then(() => process.exit(0))
);
