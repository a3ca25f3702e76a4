// usage limits: what quotas and budgets cost, on real PostgreSQL, Redis and RabbitMQ (broker calls, no HTTP): the ai
// (with auth and secrets) in the bench's process against a fake OpenAI upstream on 127.0.0.1, the usage module in a
// process of its own as deployed (its consumer's work is not the ai's).
// - the budget check's added latency per completion: ai.complete for an organization without limits and for one
//   with an organization budget and a user quota, alternating one at a time (so both see the same machine); the
//   difference of their p50 and p99 is the reservation before the call plus the settlement after it; beside them a
//   bare Redis PING after the same pause (the floor of one round trip) and, with BENCH_LIMITS_STAGES=1, each stage
//   of the ai's request path timed per organization;
// - event-to-quota-state: an ai.usage.recorded event published on ai.events (RabbitMQ) until the usage-limits
//   consumer has committed it to the limit's durable consumption (polled every millisecond), one at a time.
// Prints a table and writes bench/results/usage-limits.json. Env: BENCH_LIMITS_PAIRS (1000), BENCH_LIMITS_EVENTS
// (300), BENCH_LIMITS_GAP_MS (20), BENCH_LIMITS_LOG_BATCH_MS (the ai's AI_LOG_BATCH_MS; default 200),
// BENCH_LIMITS_STAGES (off).
import fs from "fs";
import path from "path";
import crypto from "crypto";
import pg from "pg";
import Redis from "ioredis";
import amqp from "amqplib";
import { createTestBroker, as } from "../test/helpers/broker";
import { FakeOpenAI } from "../test/helpers/fake-openai";
import { AMQP_URL, REDIS_URL, cleanRedis, createTestDatabase, uniqueNamespace } from "../test/helpers/infra";
import { AI_STACK } from "../test/helpers/ai";
import { startNode, TEST_JWT_SECRET, TEST_SERVICE_IDENTITY_KEY, TEST_TRANSIT_KEY } from "../test/helpers/process";
import { makeEvent } from "../lib/events/outbox";
import type { AuthInfo } from "../lib/permissions";

const PAIRS = Number(process.env.BENCH_LIMITS_PAIRS ?? 1000);
const EVENTS = Number(process.env.BENCH_LIMITS_EVENTS ?? 300);
// A pause after each completion, so the work it leaves behind (log batch, usage consumer, PostgreSQL) is not counted
// in the next one's latency; 0 measures back to back.
const GAP_MS = Number(process.env.BENCH_LIMITS_GAP_MS ?? 20);

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const ms = (v: number) => Math.round(v * 100) / 100;
const summary = (lat: number[]) => {
	const s = [...lat].sort((a, b) => a - b);
	return { p50: ms(pct(s, 50)), p99: ms(pct(s, 99)), max: ms(s[s.length - 1]) };
};

async function main() {
	const up = new FakeOpenAI();
	const upstream = await up.start();
	const db = await createTestDatabase();
	const namespace = uniqueNamespace("bench-limits");
	const shared = {
		DATABASE_URL: db.url,
		REDIS_URL,
		TRANSPORTER: AMQP_URL,
		CHANNELS_URL: AMQP_URL,
		NAMESPACE: namespace,
		JWT_SECRET: TEST_JWT_SECRET,
		TRANSIT_KEY: TEST_TRANSIT_KEY,
		SERVICE_IDENTITY_KEY: TEST_SERVICE_IDENTITY_KEY
	};
	const usage = startNode({ ...shared, SERVICES: "usage", NODE_ID: `${namespace}-usage` });
	await usage.ready;
	const t = await createTestBroker(
		{
			...shared,
			NODE_ID: `${namespace}-ai`,
			MASTER_KEY: crypto.randomBytes(32).toString("base64"),
			AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
			...(process.env.BENCH_LIMITS_LOG_BATCH_MS ? { AI_LOG_BATCH_MS: process.env.BENCH_LIMITS_LOG_BATCH_MS } : {})
		},
		AI_STACK
	);
	const broker = t.broker;
	await broker.waitForServices(["usage-limits", "usage-quotas", "usage-budgets"], 30_000);
	const sql = new pg.Client({ connectionString: db.url });
	await sql.connect();
	try {
		const organization = async (name: string) => {
			const reg: any = await broker.call("auth.register", {
				email: `bench-${name}@example.com`,
				password: "correct horse battery",
				name
			});
			const auth: AuthInfo = await broker.call("auth.resolve", {
				token: reg.accessToken,
				organizationId: reg.organization.id
			});
			const call = (action: string, params: object) => broker.call<any, any>(action, params, as(auth));
			await call("secrets.create", { environment: "production", name: "KEY", value: `sk-bench-${name}` });
			const p = await call("ai-providers.create", { name: "p", base_url: upstream, api_key_secret: "KEY" });
			await call("ai-deployments.create", {
				provider_id: p.id,
				name: "smart",
				provider_model: "a-smart",
				input_price: 1,
				output_price: 2
			});
			return { auth, call };
		};
		const free = await organization("free");
		const limited = await organization("limited");
		await limited.call("usage-budgets.create", {
			name: "Org budget",
			scope: "organization",
			period: "month",
			amount: 1e9
		});
		const quota = await limited.call("usage-quotas.create", {
			name: "User tokens",
			metric: "tokens",
			scope: "user",
			subject_id: limited.auth.userId,
			period: "day",
			amount: 1e15
		});
		const request = { model: "smart", messages: [{ role: "user", content: "what does a check cost?" }] };
		const time = async (who: { call: (a: string, p: object) => Promise<any> }) => {
			const t0 = performance.now();
			await who.call("ai.complete", request);
			const elapsed = performance.now() - t0;
			if (GAP_MS) await new Promise(r => setTimeout(r, GAP_MS));
			return elapsed;
		};
		// Per-stage timing inside the completions (BENCH_LIMITS_STAGES=1): the ai's own methods wrapped on its instance,
		// each call's duration kept per organization, so the added time can be told apart by stage.
		const stages: Record<string, Record<string, number[]>> = {};
		if (process.env.BENCH_LIMITS_STAGES === "1") {
			const svc: any = broker.getLocalService("ai");
			for (const name of ["begin", "checkLimits", "reserveUsage", "usageLimitsOf", "record", "orgConfig"]) {
				const inner = svc[name];
				if (typeof inner !== "function") continue;
				svc[name] = async function (this: unknown, ...args: any[]) {
					const t0 = performance.now();
					try {
						return await inner.apply(svc, args);
					} finally {
						const a0 = args[0];
						const id =
							typeof a0 === "string"
								? a0
								: (a0?.org ??
									a0?.organizationId ??
									a0?.meta?.auth?.organizationId ??
									a0?.meta?.organizationId);
						const who = id === limited.auth.organizationId ? "limited" : id ? "free" : "unknown";
						((stages[name] ??= {})[who] ??= []).push(performance.now() - t0);
					}
				};
			}
		}
		for (let i = 0; i < 200; i++) await Promise.all([time(free), time(limited)]);
		for (const k of Object.keys(stages)) delete stages[k];
		// The floor of the check: one bare Redis round trip (PING), after the same pause, between the pairs. The
		// reservation is one such round trip (a Lua script); what it adds above this is the check's own work.
		const redis = new Redis(REDIS_URL);
		const floor: number[] = [];
		const without: number[] = [];
		const withLimits: number[] = [];
		for (let i = 0; i < PAIRS; i++) {
			const t0 = performance.now();
			await redis.ping();
			floor.push(performance.now() - t0);
			if (GAP_MS) await new Promise(r => setTimeout(r, GAP_MS));
			// Alternating which goes first, so neither always follows the other.
			if (i % 2) {
				without.push(await time(free));
				withLimits.push(await time(limited));
			} else {
				withLimits.push(await time(limited));
				without.push(await time(free));
			}
		}
		redis.disconnect();
		const a = summary(without);
		const b = summary(withLimits);
		const f = summary(floor);
		const stageTable = Object.fromEntries(
			Object.entries(stages).flatMap(([name, byOrg]) =>
				Object.entries(byOrg).map(([who, lat]) => [`${name} (${who})`, { n: lat.length, ...summary(lat) }])
			)
		);

		// The check alone, as the ai runs it: reserve before the call, settle after it.
		const ai: any = broker.getLocalService("ai");
		const alone: number[] = [];
		const reserveAlone: number[] = [];
		for (let i = 0; i < PAIRS; i++) {
			const t0 = performance.now();
			const estimate = { tokens: 20, requests: 1, tool_calls: 0, cost: 0.00002 };
			const held = await ai.reserveUsage({
				organizationId: limited.auth.organizationId,
				userId: limited.auth.userId,
				estimate
			});
			reserveAlone.push(performance.now() - t0);
			await ai.settleUsage(held, estimate);
			alone.push(performance.now() - t0);
		}
		const c = summary(alone);
		const r = summary(reserveAlone);

		// Event to quota state: each event counts 1 token against the user quota.
		const used = async () =>
			Number(
				(
					await sql.query(
						"SELECT coalesce(sum(used), 0) AS used FROM usage_limit_consumption WHERE limit_id = $1",
						[quota.id]
					)
				).rows[0].used
			);
		await new Promise(r => setTimeout(r, 1000)); // the completions' own events, settled first
		let expected = await used();
		const lag: number[] = [];
		const send = (e: object) => (broker as unknown as ChannelBroker).sendToChannel("ai.events", e);
		for (let i = 0; i < EVENTS; i++) {
			const event = makeEvent("ai.usage.recorded", {
				requestId: `bench-${i}`,
				organizationId: limited.auth.organizationId!,
				userId: limited.auth.userId,
				kind: "completion",
				requestedModel: "smart",
				model: "smart",
				status: "success",
				cacheHit: false,
				inputTokens: 1,
				outputTokens: 0,
				cachedTokens: 0,
				cacheWriteTokens: 0,
				toolCalls: 0,
				cost: 0,
				occurredAt: new Date().toISOString()
			});
			const t0 = performance.now();
			await send(event);
			expected += 1;
			while ((await used()) < expected) await new Promise(r => setTimeout(r, 1));
			lag.push(performance.now() - t0);
		}
		const e = summary(lag);

		const result = {
			at: new Date().toISOString(),
			pairs: PAIRS,
			events: EVENTS,
			complete_without_limits: a,
			complete_with_org_budget_and_user_quota: b,
			added_p50_ms: ms(b.p50 - a.p50),
			added_p99_ms: ms(b.p99 - a.p99),
			gap_ms: GAP_MS,
			redis_round_trip_floor: f,
			reserve_alone: r,
			reserve_and_settle_alone: c,
			event_to_quota_state: e,
			...(Object.keys(stageTable).length ? { stages: stageTable } : {})
		};
		console.table({
			"ai.complete, no limits": a,
			"ai.complete, org budget + user quota": b,
			"Redis PING after the same pause (floor)": f,
			"reserve alone (the part on a completion's path)": r,
			"reserve + settle alone": c,
			"event → quota state": e
		});
		if (Object.keys(stageTable).length) console.table(stageTable);
		console.log(`budget check adds ${result.added_p50_ms} ms p50, ${result.added_p99_ms} ms p99 per completion`);
		fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
		fs.writeFileSync(path.join(__dirname, "results", "usage-limits.json"), JSON.stringify(result, null, 2) + "\n");
	} finally {
		await sql.end();
		await t.stop();
		await usage.stop("SIGKILL");
		await up.stop();
		await db.drop();
		await cleanRedis(namespace);
		const conn = await amqp.connect(AMQP_URL).catch(() => undefined);
		if (conn) {
			const ch = await conn.createChannel();
			for (const group of ["usage", "usage-limits"])
				await ch.deleteQueue(`${group}.${namespace}.ai.events`).catch(() => undefined);
			for (const node of [`${namespace}-ai`, `${namespace}-usage`])
				for (const kind of ["REQ", "RES", "EVENT"])
					await ch.deleteQueue(`MOL-${namespace}.${kind}.${node}`).catch(() => undefined);
			await conn.close().catch(() => undefined);
		}
	}
}

// The channels middleware's publish (@moleculer/channels adds it to the broker).
type ChannelBroker = { sendToChannel(channel: string, payload: object): Promise<void> };

main().then(
	() => process.exit(0),
	err => {
		console.error(err);
		process.exit(1);
	}
);
