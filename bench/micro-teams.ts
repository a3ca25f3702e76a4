// In-process profile target: platform teams.get on PostgreSQL in a loop (50 concurrent), CPU µs per call.
// node --cpu-prof --import tsx bench/micro-teams.ts   (not part of `npm run bench`)
import crypto from "crypto";
import path from "path";
import os from "os";
import fs from "fs";
import pg from "pg";
import { ServiceBroker } from "moleculer";
import { loadConfig, setConfig } from "../lib/config";
import { brokerOptions } from "../moleculer.config";
import { acquireDb, releaseDb } from "../lib/db";
import { HealthService } from "../lib/health";
import { BENCH_SECRETS, prepareFixture } from "./setup";

async function main() {
	const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "cide-micro-"));
	const dbName = `cide_bench_mt_${crypto.randomBytes(3).toString("hex")}`;
	const admin = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
	await admin.connect();
	await admin.query(`CREATE DATABASE ${dbName}`);
	try {
		const config = loadConfig({ ...BENCH_SECRETS, DATA_DIR: TMP, DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${dbName}`, CACHER: "none", LOG_LEVEL: "warn" });
		setConfig(config);
		await acquireDb();
		const overrides = process.env.BENCH_OVERRIDES ? JSON.parse(process.env.BENCH_OVERRIDES) : {};
		const broker = new ServiceBroker({ ...brokerOptions(config), logger: false, ...overrides });
		broker.createService(HealthService);
		for (const f of ["auth.service.ts", "teams.service.ts"]) broker.loadService(path.resolve(__dirname, "../services/auth", f));
		await broker.start();
		const f = await prepareFixture(broker);
		const N = Number(process.env.MICRO_N ?? 60000);
		const run = async () => {
			let i = 0;
			await Promise.all(
				Array.from({ length: 50 }, async () => {
					while (i++ < N) await broker.call("teams.get", { id: f.teamId }, { meta: { auth: f.auth } });
				})
			);
		};
		await run();
		const c0 = process.cpuUsage();
		await run();
		const c = process.cpuUsage(c0);
		console.log(`teams.get in-process: ${((c.user + c.system) / N).toFixed(1)} µs CPU/call`);
		await broker.stop();
		await releaseDb();
	} finally {
		await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
		await admin.end();
		fs.rmSync(TMP, { recursive: true, force: true });
	}
}
main().then(() => process.exit(0), e => (console.error(e), process.exit(1)));
