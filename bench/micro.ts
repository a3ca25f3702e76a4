// In-process cost of the broker options themselves: CPU µs per local call (process.cpuUsage, so other load on the
// machine matters less than for throughput), for a trivial action and for auth-teams.get on PostgreSQL, under broker
// option variants. Not part of `npm run bench`.  node --import tsx bench/micro.ts
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
import { prepareFixture } from "./setup";
import { BENCH_SECRETS } from "./setup";
import { createTestDatabase } from "../test/helpers/infra";

const N = Number(process.env.MICRO_N ?? 20000);
const CONC = 50;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "cide-micro-"));

async function measure(fn: () => Promise<unknown>, n = N) {
	let i = 0;
	const worker = async () => {
		while (i++ < n) await fn();
	};
	await Promise.all(Array.from({ length: CONC }, worker)); // warm-up
	i = 0;
	const c0 = process.cpuUsage();
	const t0 = process.hrtime.bigint();
	await Promise.all(Array.from({ length: CONC }, worker));
	const c = process.cpuUsage(c0);
	const wall = Number(process.hrtime.bigint() - t0) / 1e6;
	return { cpuUs: Math.round(((c.user + c.system) / n) * 10) / 10, rps: Math.round(n / (wall / 1000)) };
}

const echoSchema = { name: "echo", actions: { echo: { permission: "public", handler: (ctx: any) => ctx.params } } };

async function main() {
	const db = await createTestDatabase("cide_bench_m");
	const dbUrl = db.url;
	const config = loadConfig({
		...BENCH_SECRETS,
		DATA_DIR: TMP,
		DATABASE_URL: dbUrl,
		CACHER: "none",
		LOG_LEVEL: "warn"
	});
	setConfig(config);
	await acquireDb();
	const base: any = { ...brokerOptions(config), logger: false };
	const variants: Record<string, any> = {
		platform: base,
		bare: { logger: false },
		"platform, metrics off": { ...base, metrics: { enabled: false } },
		"platform, no circuit breaker": { ...base, circuitBreaker: { enabled: false } },
		"platform, no retry": { ...base, retryPolicy: { enabled: false } },
		"platform, no tracking": { ...base, tracking: { enabled: false } },
		"platform, no custom middlewares": { ...base, middlewares: [] },
		"platform, default validator": { ...base, validator: true }
	};
	try {
		const rounds = Number(process.env.MICRO_ROUNDS ?? 2);
		for (let round = 0; round < rounds; round++)
			for (const [name, opts] of Object.entries(variants)) {
				const broker = new ServiceBroker({ ...opts, nodeID: `micro-${crypto.randomBytes(2).toString("hex")}` });
				broker.createService(echoSchema as any);
				const platform = name !== "bare";
				if (platform) {
					broker.createService(HealthService);
					for (const f of ["auth.service.ts", "teams.service.ts"])
						broker.loadService(path.resolve(__dirname, "../services/auth", f));
				}
				await broker.start();
				const e = await measure(() => broker.call("echo.echo", { id: "x" }));
				let t = { cpuUs: NaN, rps: NaN };
				if (!platform) {
					// The same read with no platform code: a plain pg pool, prepared, same table and row shape.
					const pool = new pg.Pool({ connectionString: dbUrl, max: 10 });
					const { rows } = await pool.query("SELECT id, organization_id FROM teams LIMIT 1");
					if (rows[0]) {
						broker.createService({
							name: "plain",
							actions: {
								get: {
									params: { id: "string" },
									async handler(ctx: any) {
										const r = await pool.query({
											name: "plain_get",
											text: 'SELECT "id", "organization_id", "name", "description", "created_at", "updated_at" FROM teams WHERE "id" = $1 AND "organization_id" = $2 LIMIT 1',
											values: [ctx.params.id, ctx.meta.auth.organizationId]
										});
										return r.rows[0];
									}
								}
							}
						});
						await broker.waitForServices("plain");
						const auth = { organizationId: rows[0].organization_id, userId: "u" };
						t = await measure(
							() => broker.call("plain.get", { id: rows[0].id }, { meta: { auth } }),
							N / 2
						);
					}
					await pool.end();
				}
				if (platform) {
					const f = await prepareFixture(broker);
					t = await measure(
						() => broker.call("auth-teams.get", { id: f.teamId }, { meta: { auth: f.auth } }),
						N / 2
					);
				}
				console.log(
					`${round} ${name.padEnd(34)} echo ${String(e.cpuUs).padStart(6)} µs/call (${e.rps}/s)   auth-teams.get ${String(t.cpuUs).padStart(6)} µs/call (${t.rps}/s)`
				);
				await broker.stop();
			}
	} finally {
		await releaseDb();
		await db.drop();
		fs.rmSync(TMP, { recursive: true, force: true });
	}
}

main().then(
	() => process.exit(0),
	e => {
		console.error(e);
		process.exit(1);
	}
);
