// The cost of each layer, in one run:
//  - an authenticated REST read (GET /api/auth/teams/:id) through the gateway to the auth module in another process
//    over RabbitMQ, cache miss (CACHER=none) and cache hit (Redis), beside a bare moleculer-web route (another
//    process) calling a local action that does the same PostgreSQL read;
//  - secrets.resolve from another process over RabbitMQ, with and without the client mixin's in-process cache.
import fs from "fs";
import path from "path";
import os from "os";
import crypto from "crypto";
import { ServiceBroker } from "moleculer";
import { spawnChild, Child } from "./proc";
import { runLoad, DEFAULT_LOAD, LoadStats } from "./load";
import { loadConfig, setConfig } from "../lib/config";
import { brokerOptions } from "../moleculer.config";
import { resolveBinding, SecretsClientMixin } from "../mixins/secrets-client.mixin";
import { createTestDatabase } from "../test/helpers/infra";

const PG_ADMIN = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const AMQP = "amqp://guest:guest@127.0.0.1:5672";
const REDIS = "redis://127.0.0.1:6379";
const SECRETS = {
	JWT_SECRET: crypto.randomBytes(24).toString("hex"),
	TRANSIT_KEY: crypto.randomBytes(24).toString("hex"),
	SERVICE_IDENTITY_KEY: crypto.randomBytes(24).toString("hex")
};
const UP = /Coder IDE node .* up/;

async function json(url: string, init: RequestInit = {}) {
	const r = await fetch(url, init);
	const body: any = await r.json();
	if (r.status >= 400) throw new Error(`${url}: ${r.status} ${JSON.stringify(body)}`);
	return body;
}

// A REST read as a signed-in user, through a gateway on `port`, for the whole run.
async function restFixture(port: number) {
	const base = `http://127.0.0.1:${port}`;
	for (
		let i = 0;
		i < 150 &&
		(await fetch(`${base}/api/auth/login`, { method: "POST" })
			.then(r => r.status)
			.catch(() => 0)) !== 422;
		i++
	)
		await new Promise(r => setTimeout(r, 200));
	const reg = await json(`${base}/api/auth/register`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({
			email: `layers-${crypto.randomBytes(4).toString("hex")}@example.com`,
			password: "correct horse battery",
			name: "Layers"
		})
	});
	const headers = { authorization: `Bearer ${reg.accessToken}`, "x-organization-id": reg.organization.id };
	const team = await json(`${base}/api/auth/teams`, {
		method: "POST",
		headers: { ...headers, "content-type": "application/json" },
		body: JSON.stringify({ name: "Layers" })
	});
	return { base, headers, teamUrl: `${base}/api/auth/teams/${team.id}`, reg };
}

const get = (url: string, headers: Record<string, string>) => async () => {
	const r = await fetch(url, { headers });
	await r.arrayBuffer();
	if (r.status !== 200) throw new Error(`status ${r.status}`);
};

async function main() {
	console.log("Layers bench…");
	const results: Record<string, LoadStats & { label: string }> = {};
	const children: Child[] = [];
	const db = await createTestDatabase("cide_bench_layers", PG_ADMIN);
	const namespace = `bench-layers-${crypto.randomBytes(3).toString("hex")}`;
	const env = {
		...SECRETS,
		LOG_LEVEL: "warn",
		TRANSPORTER: AMQP,
		DATABASE_URL: db.url,
		RATE_LIMIT_IP_PER_MINUTE: "100000000",
		RATE_LIMIT_USER_PER_MINUTE: "100000000"
	};
	const start = async (name: string, extra: Record<string, string>) => {
		const c = spawnChild(name, "lib/main.ts", { ...env, LOG_LEVEL: "info", ...extra });
		children.push(c);
		await c.waitFor(UP, 60_000);
		return c;
	};
	let caller: ServiceBroker | undefined;
	let team: { id: string; org: string } | undefined;
	try {
		// Through the platform's gateway to the auth module in another process: no cache, then Redis hits.
		for (const [key, label, cacher] of [
			["gatewayMiss", "gateway → RabbitMQ → auth node, PostgreSQL (no cache)", "none"],
			["gatewayHit", "gateway → RabbitMQ → auth node, Redis cache hit", REDIS]
		]) {
			const ns = `${namespace}-${key}`;
			await start(`auth-${key}`, { SERVICES: "auth", NAMESPACE: ns, CACHER: cacher });
			const gw = await start(`gateway-${key}`, {
				SERVICES: "gateway",
				NAMESPACE: ns,
				CACHER: cacher,
				PORT: "3994"
			});
			const f = await restFixture(3994);
			team ??= { id: f.teamUrl.split("/").pop()!, org: f.reg.organization.id };
			results[key] = {
				label: `authenticated REST read: ${label}`,
				...(await runLoad(get(f.teamUrl, f.headers), DEFAULT_LOAD))
			};
			await Promise.all(children.splice(0).map(c => c.stop()));
			void gw;
		}

		// The same read, answered by a bare moleculer-web route calling a local action (another process too).
		const bareWeb = spawnChild("bare-web", "bench/bare-web.ts", { DATABASE_URL: env.DATABASE_URL, PORT: "3993" });
		children.push(bareWeb);
		await bareWeb.waitFor(/bare web up/, 30_000);
		results.bareWeb = {
			label: "bare moleculer-web → local action, same PostgreSQL read",
			...(await runLoad(get(`http://127.0.0.1:3993/api/teams/${team!.org}/${team!.id}`, {}), DEFAULT_LOAD))
		};
		await Promise.all(children.splice(0).map(c => c.stop()));

		// secrets.resolve from this process (another node) to the secrets node over RabbitMQ.
		const ns = `${namespace}-secrets`;
		await start("auth+secrets", {
			SERVICES: "auth,secrets",
			NAMESPACE: ns,
			MASTER_KEY: crypto.randomBytes(32).toString("base64")
		});
		await start("gateway-secrets", { SERVICES: "gateway", NAMESPACE: ns, PORT: "3995" });
		const f = await restFixture(3995);
		await json(`${f.base}/api/secrets`, {
			method: "POST",
			headers: { ...f.headers, "content-type": "application/json" },
			body: JSON.stringify({ environment: "production", name: "BENCH_KEY", value: "sk-bench-resolve" })
		});
		const secret = (await json(`${f.base}/api/secrets?environment=production`, { headers: f.headers })).find(
			(s: any) => s.name === "BENCH_KEY"
		);
		await json(`${f.base}/api/secrets/grants`, {
			method: "POST",
			headers: { ...f.headers, "content-type": "application/json" },
			body: JSON.stringify({
				secretId: secret.id,
				permission: "read",
				granteeType: "service",
				granteeId: "bench-consumer"
			})
		});
		const config = loadConfig({
			...env,
			NAMESPACE: ns,
			SERVICES: "",
			DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "cide-layers-"))
		});
		setConfig(config);
		caller = new ServiceBroker({ ...brokerOptions(config), nodeID: `${ns}-caller`, logger: false });
		const consumer = caller.createService({ name: "bench-consumer", mixins: [SecretsClientMixin as any] }) as any;
		await caller.start();
		await caller.waitForServices(["secrets"], 30_000);
		const ref = { organizationId: f.reg.organization.id, environment: "production", name: "BENCH_KEY" };
		results.resolveDirect = {
			label: "secrets.resolve over RabbitMQ, no client cache (each call is signed, verified, decrypted and audited)",
			...(await runLoad(() => {
				const meta = consumer.identityMeta("secrets.resolve", ref.organizationId, resolveBinding(ref));
				return caller!.call("secrets.resolve", ref, { meta });
			}, DEFAULT_LOAD))
		};
		results.resolveCached = {
			label: "resolveSecret through SecretsClientMixin (in-process cache)",
			...(await runLoad(() => consumer.resolveSecret(ref), DEFAULT_LOAD))
		};
	} finally {
		await caller?.stop().catch(() => undefined);
		await Promise.all(children.map(c => c.stop().catch(() => undefined)));
		await db.drop().catch(() => undefined);
	}

	const bareRps = results.bareWeb.rps;
	console.log(`\nLayers (${DEFAULT_LOAD.concurrency} concurrent callers, ${DEFAULT_LOAD.durationMs / 1000} s):`);
	console.log("scenario".padEnd(96) + "req/s     p50 ms   p99 ms   errors  ratio to bare web");
	for (const r of [
		results.bareWeb,
		results.gatewayMiss,
		results.gatewayHit,
		results.resolveDirect,
		results.resolveCached
	])
		console.log(
			`${r.label.padEnd(96)}${String(r.rps).padEnd(10)}${String(r.p50).padEnd(9)}${String(r.p99).padEnd(9)}${String(r.errors).padEnd(8)}${r.label.startsWith("authenticated") ? (r.rps / bareRps).toFixed(2) : ""}`
		);
	fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
	fs.writeFileSync(
		path.join(__dirname, "results", "layers.json"),
		JSON.stringify({ generatedAt: new Date().toISOString(), load: DEFAULT_LOAD, results }, null, 2) + "\n"
	);
	process.exit(0);
}

main().catch(err => {
	console.error(err);
	process.exit(1);
});
