// A platform node (as lib/main.ts builds it) with broker options changed for an experiment, so a cause can be
// measured before any production code changes. Used by bench/explore.ts, never by `npm run bench`.
//   BENCH_OVERRIDES='{"metrics":{"enabled":false}}'  merged over moleculer.config.ts's options (shallow)
//   BENCH_DROP_MIDDLEWARES='Authz,Channels'          platform middlewares left out, by name
//   BENCH_NO_PREPARE=1                               PgAdapter.findOne as before prepared statements (A/B)
import { loadConfig, setConfig } from "../lib/config";
import { preflight } from "../lib/preflight";
import { createNode, serviceFiles } from "../lib/node";
import { brokerOptions } from "../moleculer.config";
import { releaseDb } from "../lib/db";
import "./no-prepare";
import { stopNodeOnSignal } from "./proc";

export function variantOptions(base: any, env = process.env) {
	const overrides = env.BENCH_OVERRIDES ? JSON.parse(env.BENCH_OVERRIDES) : {};
	const drop = (env.BENCH_DROP_MIDDLEWARES ?? "").split(",").filter(Boolean);
	const middlewares = (base.middlewares ?? []).filter((m: any) => !drop.some(d => (m?.name ?? "").includes(d)));
	return { ...base, middlewares, ...overrides };
}

async function main() {
	const config = loadConfig();
	setConfig(config);
	const files = serviceFiles(config);
	await preflight(config);
	const broker = createNode(config, variantOptions(brokerOptions(config)), files);
	stopNodeOnSignal(broker, releaseDb);
	await broker.start();
	process.stdout.write(`Coder IDE node ${broker.nodeID} up (variant)\n`);
}

if (require.main === module || process.argv[1]?.endsWith("variant-node.ts")) main();
