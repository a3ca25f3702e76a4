// Entry point of every process: `npm start` (embedded, all services) or one cluster node (SERVICES=…).
import v8 from "v8";
import { Config, ConfigError, loadConfig, setConfig } from "./config";
import type { ProgressLog } from "./db/driver";
import { preflight } from "./preflight";
import { createNode, serviceFiles } from "./node";
import { releaseDb } from "./db";
import { startHealthServer } from "./health";
import { stopTimeLeft } from "./in-flight";

// Start-up progress (creating the embedded database, migrations) comes before the broker and its logger exist: the
// same line format as the broker's "short" logger.
function startupLog(config: Config): ProgressLog | undefined {
	if (!["info", "debug", "trace"].includes(config.logLevel)) return undefined;
	return message => process.stdout.write(`[${new Date().toISOString().slice(11)}] INFO  STARTUP: ${message}\n`);
}

function fail(message: string): never {
	process.stderr.write(`Start-up failed: ${message}\n`);
	process.exit(1);
}

async function main() {
	let config, files;
	try {
		config = loadConfig();
		setConfig(config);
		// Memory for CPU: under load most garbage is promoted request objects, and V8's own factor lets the old
		// generation grow to several times what survives before collecting again (bench/README.md, "Memory"). V8 reads
		// the flag at every full collection, so setting it here works; a V8 without the flag ignores it, where the
		// command line would refuse to start.
		if (config.heapGrowingPercent) v8.setFlagsFromString(`--heap-growing-percent=${config.heapGrowingPercent}`);
		files = serviceFiles(config);
		await preflight(config, startupLog(config));
	} catch (err: any) {
		fail(err instanceof ConfigError ? err.message : err.message || String(err));
	}

	let broker;
	try {
		broker = createNode(config, {}, files);
	} catch (err: any) {
		fail(err.message);
	}
	const healthServer = config.healthPort != null ? startHealthServer(broker, config.healthPort) : undefined;

	let stopping = false;
	const shutdown = async (signal: string) => {
		if (stopping) return;
		stopping = true;
		broker.logger.info(`${signal} received: finishing in-flight work, then leaving the cluster.`);
		// The broker's stop keeps within its shutdown budget (lib/in-flight.ts StopDeadline); what follows it (closing
		// connections, releasing the database) gets 15 s more before the process gives up.
		const force = setTimeout(() => process.exit(1), stopTimeLeft(broker) + 15_000);
		force.unref();
		try {
			await broker.stop();
			healthServer?.close();
			await releaseDb();
		} finally {
			process.exit(0);
		}
	};
	process.on("SIGTERM", () => shutdown("SIGTERM"));
	process.on("SIGINT", () => shutdown("SIGINT"));

	try {
		await broker.start();
	} catch (err: any) {
		await broker.stop().catch(() => undefined);
		fail(err.message);
	}
	if (config.repl) broker.repl();
	// Without CHANNELS_URL durable events are delivered in this process only: a consumer on another node never hears them.
	if (config.transporterUrl && !config.channelsUrl && broker.services.some(s => s.name !== "$node"))
		broker.logger.warn(
			"TRANSPORTER is set but CHANNELS_URL is not: durable events reach only this node's own consumers. " +
				"Set CHANNELS_URL (RabbitMQ) on every node of a cluster."
		);
	broker.logger.info(
		`Coder IDE node ${broker.nodeID} up (${config.mode}; services: ${broker.services.map(s => s.name).join(", ")})`
	);
}

main();
