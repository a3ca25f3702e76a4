// Scenario (a): one embedded process (no transporter), the platform's own start-up path (config, preflight,
// createNode), the load generated in the same process with local calls. Prints one "BENCH_RESULT <json>" line,
// then waits for SIGTERM so the parent can read this process's peak RSS first.
import { loadConfig, setConfig } from "../lib/config";
import { preflight } from "../lib/preflight";
import { createNode } from "../lib/node";
import { releaseDb } from "../lib/db";
import { prepareFixture, readTeam } from "./setup";
import "./no-prepare";
import { DEFAULT_LOAD } from "./load";
import { POSTGRES, runLoadWithCpu } from "./cpu";
import { stopNodeOnSignal } from "./proc";

async function main() {
	const config = loadConfig();
	setConfig(config);
	await preflight(config);
	const broker = createNode(config);
	await broker.start();
	const info = {
		cacher: (broker as any).cacher ? (broker as any).cacher.constructor.name : null,
		db: config.databaseUrl ? "postgres" : "pglite"
	};
	const fixture = await prepareFixture(broker);
	const stats = await runLoadWithCpu(
		readTeam(broker, fixture),
		{ node: "self", ...(config.databaseUrl ? { postgres: POSTGRES } : {}) },
		DEFAULT_LOAD
	);
	process.stdout.write(`BENCH_RESULT ${JSON.stringify({ ...stats, ...info })}\n`);

	stopNodeOnSignal(broker, releaseDb);
	setInterval(() => undefined, 1 << 30);
}

main().catch(err => {
	process.stdout.write(`BENCH_ERROR ${err?.stack ?? err}\n`);
	process.exit(1);
});
