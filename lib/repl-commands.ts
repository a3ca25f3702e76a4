// Platform commands for the Moleculer REPL (`npm run repl`), beside the built-in ones (call, nodes, services…).
import type { ServiceBroker } from "moleculer";
// Loaded when a command runs, not with the REPL (a plain require: compiled, a relative import() finds no ".js").
import type * as Db from "./db";
import type * as Migrate from "./db/migrate";

export const replCommands = [
	{
		command: "health",
		description: "Readiness of every node in the cluster (database, transporter, channels, cache)",
		async action(broker: ServiceBroker) {
			const nodes = (broker.registry.getNodeList({ onlyAvailable: true, withServices: true }) as any[]).filter(
				n => n.services.some((s: any) => s.name === "health")
			);
			for (const node of nodes) {
				try {
					const r: any = await broker.call("health.ready", {}, { nodeID: node.id, timeout: 3000 });
					const checks = Object.entries(r.checks).map(
						([k, v]: any) => `${k}=${v.ok ? "ok" : "FAIL " + (v.error ?? "")}`
					);
					console.log(`${node.id.padEnd(40)} ${r.status.padEnd(10)} ${checks.join(" ")}`);
				} catch (err: any) {
					console.log(`${node.id.padEnd(40)} unreachable ${err.message}`);
				}
			}
		}
	},
	{
		command: "outbox",
		description: "Events waiting in the outbox (not yet relayed to the channels)",
		async action() {
			const db = await (require("./db") as typeof Db).getDb();
			const { rows } = await db.query(
				"SELECT channel, count(*)::int AS pending, min(created_at) AS oldest, max(attempts) AS max_attempts FROM outbox WHERE published_at IS NULL GROUP BY channel ORDER BY channel"
			);
			if (!rows.length) console.log("outbox is empty: every event has been relayed");
			for (const r of rows)
				console.log(
					`${r.channel.padEnd(20)} pending=${r.pending} oldest=${new Date(r.oldest).toISOString()} attempts<=${r.max_attempts}`
				);
		}
	},
	{
		command: "migrations",
		description: "Applied database migrations (module/NNNN_name), oldest first",
		async action() {
			const { migrationId } = require("./db/migrate") as typeof Migrate;
			const db = await (require("./db") as typeof Db).getDb();
			const { rows } = await db.query(
				"SELECT module, version, name, applied_at FROM schema_migrations ORDER BY applied_at, module, version"
			);
			for (const r of rows) console.log(`${migrationId(r).padEnd(48)} ${new Date(r.applied_at).toISOString()}`);
		}
	}
];
