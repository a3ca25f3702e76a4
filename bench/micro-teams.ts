// In-process profile target: platform auth-teams.get on PostgreSQL in a loop (50 concurrent), CPU µs per call.
// node --cpu-prof --import tsx bench/micro-teams.ts   (not part of `npm run bench`)
import path from "path";
import os from "os";
import fs from "fs";
import { ServiceBroker } from "moleculer";
import { loadConfig, setConfig } from "../lib/config";
import { brokerOptions } from "../moleculer.config";
import { acquireDb, releaseDb } from "../lib/db";
import { HealthService } from "../lib/health";
import { BENCH_SECRETS, prepareFixture } from "./setup";
import { createTestDatabase } from "../test/helpers/infra";

async function main() {
	const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "cide-micro-"));
	const db = await createTestDatabase("cide_bench_mt");
	try {
		const config = loadConfig({
			...BENCH_SECRETS,
			DATA_DIR: TMP,
			DATABASE_URL: db.url,
			CACHER: "none",
			LOG_LEVEL: "warn"
		});
		setConfig(config);
		await acquireDb();
		const overrides = process.env.BENCH_OVERRIDES ? JSON.parse(process.env.BENCH_OVERRIDES) : {};
		const broker = new ServiceBroker({ ...brokerOptions(config), logger: false, ...overrides });
		broker.createService(HealthService);
		for (const f of ["auth.service.ts", "teams.service.ts"])
			broker.loadService(path.resolve(__dirname, "../services/auth", f));
		await broker.start();
		const f = await prepareFixture(broker);
		const N = Number(process.env.MICRO_N ?? 60000);
		const run = async () => {
			let i = 0;
			await Promise.all(
				Array.from({ length: 50 }, async () => {
					while (i++ < N) await broker.call("auth-teams.get", { id: f.teamId }, { meta: { auth: f.auth } });
				})
			);
		};
		await run();
		const c0 = process.cpuUsage();
		await run();
		const c = process.cpuUsage(c0);
		console.log(`auth-teams.get in-process: ${((c.user + c.system) / N).toFixed(1)} µs CPU/call`);
		await broker.stop();
		await releaseDb();
	} finally {
		await db.drop();
		fs.rmSync(TMP, { recursive: true, force: true });
	}
}
main().then(
	() => process.exit(0),
	e => (console.error(e), process.exit(1))
);
