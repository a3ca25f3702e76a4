// Diagnosis for the cross-process path: the same auth-teams.get load against node variants (broker options changed by
// env, see bench/variant-node.ts), with CPU time per request of every process involved (caller, node, RabbitMQ,
// PostgreSQL) and how busy the whole machine was. Not part of `npm run bench`.
//
//   node --import tsx bench/explore.ts 'base={}' 'nometrics={"BENCH_OVERRIDES":"{\"metrics\":{\"enabled\":false}}"}'
//
// Each argument is label=<JSON env for the node>. X_CALLER=platform|bare|bare+enc (default platform; platform nodes
// only understand encrypted packets, so a bare caller needs bare+enc), X_REPEAT (default 2,
// variants interleaved), X_ACTION=auth-teams.get|health.live, X_CALLER_ENV=<JSON env for the platform caller's config>.
import crypto from "crypto";
import path from "path";
import os from "os";
import fs from "fs";
import { ServiceBroker } from "moleculer";
import { loadConfig } from "../lib/config";
import { brokerOptions } from "../moleculer.config";
import { bareBrokerOptions } from "./bare";
import { DEFAULT_LOAD } from "./load";
import { POSTGRES, RABBITMQ, runLoadWithCpu } from "./cpu";
import { BENCH_SECRETS, prepareFixture } from "./setup";
import { spawnChild, stopAll } from "./proc";
import { variantOptions } from "./variant-node";
import { TransitEncryption } from "../lib/transit-encryption";
import { createTestDatabase } from "../test/helpers/infra";

const AMQP_URL = "amqp://guest:guest@127.0.0.1:5672";
const PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres";
const RUN = crypto.randomBytes(3).toString("hex");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "cide-explore-"));

async function main() {
	const variants = process.argv.slice(2).map(a => {
		const i = a.indexOf("=");
		return { label: a.slice(0, i), env: JSON.parse(a.slice(i + 1) || "{}") as Record<string, string> };
	});
	if (!variants.length) variants.push({ label: "base", env: {} });
	const repeat = Number(process.env.X_REPEAT ?? 2);
	const defaultCaller = process.env.X_CALLER ?? "platform";
	const defaultAction = process.env.X_ACTION ?? "auth-teams.get";
	const rate = process.env.X_RATE ? Number(process.env.X_RATE) : undefined;
	const db = await createTestDatabase("cide_bench_x", PG_ADMIN);
	const dbUrl = db.url;
	try {
		for (let r = 0; r < repeat; r++)
			for (const [vi, v] of variants.entries()) {
				const ns = `bench-x-${RUN}-${r}-${vi}`;
				const env = { TRANSPORTER: AMQP_URL, NAMESPACE: ns, ...BENCH_SECRETS, DATA_DIR: path.join(TMP, "d") };
				const { SCRIPT, CALLER, ACTION, CALLER_OVERRIDES, CALLER_DROP_MIDDLEWARES, ...nodeVars } = v.env;
				const node = spawnChild(v.label, SCRIPT ?? "bench/variant-node.ts", {
					...env,
					SERVICES: "auth",
					NODE_ID: `auth-${ns}`,
					DATABASE_URL: dbUrl,
					CACHER: "none",
					LOG_LEVEL: "info",
					...nodeVars
				});
				let b: ServiceBroker | undefined;
				try {
					await node.waitFor(/(Coder IDE|echo) node .* up/, 60_000);
					const callerKind = CALLER ?? defaultCaller;
					const action = ACTION ?? defaultAction;
					const callerEnv = {
						...env,
						CACHER: "none",
						LOG_LEVEL: "warn",
						...JSON.parse(process.env.X_CALLER_ENV ?? "{}"),
						...(CALLER_OVERRIDES ? { BENCH_OVERRIDES: CALLER_OVERRIDES } : {}),
						...(CALLER_DROP_MIDDLEWARES ? { BENCH_DROP_MIDDLEWARES: CALLER_DROP_MIDDLEWARES } : {})
					};
					b =
						callerKind === "bare"
							? new ServiceBroker({
									...bareBrokerOptions(env),
									heartbeatInterval: 2,
									heartbeatTimeout: 6,
									nodeID: `caller-${ns}`
								})
							: callerKind === "bare+enc" // bare, plus only the packet encryption platform nodes require
								? new ServiceBroker({
										...bareBrokerOptions(env),
										heartbeatInterval: 2,
										heartbeatTimeout: 6,
										middlewares: [TransitEncryption(BENCH_SECRETS.TRANSIT_KEY)],
										nodeID: `caller-${ns}`
									})
								: new ServiceBroker({
										...variantOptions(brokerOptions(loadConfig(callerEnv)), callerEnv),
										nodeID: `caller-${ns}`
									});
					await b.start();
					const isEcho = action.startsWith("echo.");
					await b.waitForServices(isEcho ? ["echo"] : ["auth", "auth-teams"], 20_000);
					const f = isEcho ? undefined : await prepareFixture(b);
					const bb = b;
					const call =
						action === "health.live"
							? () => bb.call("health.live", {}, { nodeID: `auth-${ns}` })
							: isEcho
								? () => bb.call(action, { id: "0d1c2b3a-0000-4000-8000-000000000000" })
								: () => bb.call("auth-teams.get", { id: f!.teamId }, { meta: { auth: f!.auth } });
					const s = await runLoadWithCpu(
						call,
						{ caller: "self", node: node.pid, rabbitmq: RABBITMQ, postgres: POSTGRES },
						DEFAULT_LOAD,
						rate
					);
					const c = s.cpuUsPerRequest;
					console.log(
						`${r} ${v.label.padEnd(18)} ${String(s.rps).padStart(6)} req/s  p50 ${String(s.p50).padStart(6)}  p99 ${String(s.p99).padStart(7)}  err ${s.errors}  ` +
							`CPU µs/req: caller ${c.caller} node ${c.node} rabbit ${c.rabbitmq} pg ${c.postgres} | sum ${c.caller + c.node + c.rabbitmq + c.postgres}  machine ${s.machineBusyPct}%` +
							(s.firstError ? `  ${s.firstError}` : "")
					);
				} catch (err: any) {
					console.log(`${r} ${v.label}: failed: ${err.message.split("\n")[0]}`);
				} finally {
					await b?.stop().catch(() => undefined);
					await node.stop();
				}
			}
	} finally {
		await stopAll();
		await db.drop();
		fs.rmSync(TMP, { recursive: true, force: true });
	}
}

setTimeout(
	() => {
		console.error("explore: deadline");
		stopAll().finally(() => process.exit(2));
	},
	Number(process.env.X_DEADLINE_MS ?? 300_000)
).unref();

main().then(
	() => process.exit(0),
	async e => {
		console.error(e);
		await stopAll();
		process.exit(1);
	}
);
