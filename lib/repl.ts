// `npm run repl`: a node with no services of its own that joins the running cluster (same environment) and opens
// Moleculer's REPL with the platform's commands (health, outbox, migrations).
import { ConfigError, loadConfig, setConfig } from "./config";
import { preflight } from "./preflight";
import { createNode } from "./node";

async function main() {
	try {
		const config = { ...loadConfig(), services: [] as string[] };
		// Embedded data belongs to the one running process; a second one cannot open it or reach its services.
		if (config.mode === "embedded")
			throw new ConfigError(
				"TRANSPORTER",
				"is not set: the REPL joins a cluster; for the embedded platform run `REPL=1 npm start`"
			);
		setConfig(config);
		await preflight(config);
		const broker = createNode(config, { nodeID: `repl-${process.pid}` });
		await broker.start();
		broker.repl();
	} catch (err: any) {
		process.stderr.write(`REPL start-up failed: ${err instanceof ConfigError ? err.message : err.message}\n`);
		process.exit(1);
	}
}

main();
