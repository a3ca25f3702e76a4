// notifications: how many notifications per second the module delivers, in one process on real PostgreSQL with
// its channels on RabbitMQ (CHANNELS_URL, as deployed). Events are written to the outbox as a producing module
// writes them; the relay publishes them to RabbitMQ and the notifications consumer routes them.
// - in-app: N budget warnings, each stored as one inbox notification (and its live push broadcast); measured from
//   the first outbox write to the last notification row;
// - webhook: N provider-health events to a webhook channel whose receiver is a bare HTTP server on 127.0.0.1, each
//   signed (Standard Webhooks) and POSTed by the delivery worker; measured to the last 2xx, with per-event latency
//   (event time to receipt).
// Prints a table and writes bench/results/notifications.json. Env: BENCH_NOTIFY_EVENTS (2000).
import crypto from "crypto";
import fs from "fs";
import http from "http";
import path from "path";
import type { AddressInfo } from "net";
import pg from "pg";
import { createTestBroker, as } from "../test/helpers/broker";
import { AUTH_FILES } from "../test/helpers/gateway";
import { AMQP_URL, createTestDatabase, uniqueNamespace } from "../test/helpers/infra";
import { deleteRabbitObjects } from "../test/helpers/rabbit";
import { getDb } from "../lib/db";
import { permissionTable } from "../lib/authz";
import type { AuthInfo } from "../lib/permissions";

const EVENTS = Number(process.env.BENCH_NOTIFY_EVENTS ?? 2000);
const FILES = [
	...AUTH_FILES,
	"services/secrets/secrets.service.ts",
	"services/notifications/notifications.service.ts",
	"services/notifications/channels.service.ts",
	"services/notifications/preferences.service.ts"
];

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

async function until(
	check: () => Promise<boolean>,
	timeoutMs = Number(process.env.BENCH_NOTIFY_TIMEOUT_MS ?? 300_000)
) {
	const deadline = Date.now() + timeoutMs;
	while (!(await check())) {
		if (Date.now() > deadline) throw new Error("timed out");
		await sleep(20);
	}
}

// The outbox rows a producing module's withEvents writes, in batches of 500.
async function produce(type: string, make: (i: number) => Record<string, unknown>) {
	const db = await getDb();
	const events = Array.from({ length: EVENTS }, (_, i) => ({
		...make(i),
		type,
		id: crypto.randomUUID(),
		time: new Date().toISOString()
	}));
	for (let i = 0; i < events.length; i += 500) {
		const batch = events.slice(i, i + 500);
		const values: unknown[] = [];
		const tuples = batch.map(
			e =>
				`($${values.push(e.id)}, $${values.push(`${type.split(".")[0]}.events`)}, $${values.push(JSON.stringify(e))})`
		);
		await db.query(`INSERT INTO outbox (id, channel, payload) VALUES ${tuples.join(", ")}`, values);
	}
	return events;
}

async function main() {
	const namespace = uniqueNamespace("bench-ntf");
	const db = await createTestDatabase("cide_bench");
	const received: number[] = [];
	const receiver = http.createServer((req, res) => {
		req.resume();
		req.on("end", () => {
			received.push(Date.now());
			res.statusCode = 204;
			res.end();
		});
	});
	await new Promise<void>(r => receiver.listen(0, "127.0.0.1", r));
	const watcher = new pg.Pool({ connectionString: db.url, max: 1 });
	const t = await createTestBroker(
		{
			DATABASE_URL: db.url,
			CHANNELS_URL: AMQP_URL,
			NAMESPACE: namespace,
			MASTER_KEY: crypto.randomBytes(32).toString("base64"),
			NOTIFICATIONS_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
			NOTIFICATIONS_POLL_MS: "50",
			RATE_LIMIT_USER_PER_MINUTE: "100000000",
			// The knobs of a consumer's parallelism, passed through for a run that varies them.
			CHANNELS_MAX_IN_FLIGHT: process.env.CHANNELS_MAX_IN_FLIGHT,
			DATABASE_POOL_SIZE: process.env.DATABASE_POOL_SIZE
		},
		FILES,
		process.env.BENCH_LOG ? { logger: { type: "Console", options: { level: process.env.BENCH_LOG } } } : {}
	);
	try {
		const reg: any = await t.broker.call("auth.register", {
			email: "bench-notify@example.com",
			password: "correct horse battery",
			name: "bench"
		});
		const org = reg.organization.id;
		const owner: AuthInfo = {
			kind: "session",
			userId: reg.user.id,
			organizationId: org,
			role: "owner",
			permissions: [...permissionTable().byRole.owner]
		};
		// Its own connection: the platform's pool is the module's, busy with the work measured.
		const count = async (q: string) => Number((await watcher.query(q)).rows[0].n);

		// In-app.
		let started = performance.now();
		await produce("usage.budget.warning", i => ({
			organizationId: org,
			scope: "organization",
			period: "month",
			periodStart: "2026-12-01T00:00:00Z",
			used: 80,
			limit: 100,
			percentage: 80,
			budgetId: crypto.randomUUID(),
			n: i
		}));
		await until(async () => (await count("SELECT count(*) AS n FROM notifications_inbox")) >= EVENTS);
		const inAppSeconds = (performance.now() - started) / 1000;

		// Webhook.
		await t.broker.call(
			"secrets.create",
			{ environment: "production", name: "HOOK", value: "whsec_" + crypto.randomBytes(24).toString("base64") },
			as(owner)
		);
		const port = (receiver.address() as AddressInfo).port;
		await t.broker.call(
			"notifications-channels.create",
			{
				name: "bench",
				kind: "webhook",
				config: { url: `http://127.0.0.1:${port}/hook`, secret: { name: "HOOK" } },
				event_types: ["ai.provider.health.changed"]
			},
			as(owner)
		);
		started = performance.now();
		const events = await produce("ai.provider.health.changed", i => ({
			organizationId: org,
			providerId: `p-${i}`,
			status: "down"
		}));
		await until(async () => received.length >= EVENTS);
		const webhookSeconds = (performance.now() - started) / 1000;
		const sentAt = new Map(events.map(e => [e.id, Date.parse(e.time)]));
		const first = Math.min(...sentAt.values());
		const latencies = received.map(r => r - first).sort((a, b) => a - b);
		const failed = await count("SELECT count(*) AS n FROM notifications_deliveries WHERE status <> 'sent'");

		const result = {
			events: EVENTS,
			inApp: { seconds: +inAppSeconds.toFixed(2), perSecond: Math.round(EVENTS / inAppSeconds) },
			webhook: {
				seconds: +webhookSeconds.toFixed(2),
				perSecond: Math.round(EVENTS / webhookSeconds),
				firstReceivedMs: latencies[0],
				p50ReceivedMs: pct(latencies, 50),
				notSent: failed
			},
			channelsMaxInFlight: t.config.channelsMaxInFlight,
			machine: { cpus: (await import("os")).cpus().length, node: process.version },
			at: new Date().toISOString()
		};
		console.table({
			"in-app": { "notifications/s": result.inApp.perSecond, seconds: result.inApp.seconds },
			webhook: { "notifications/s": result.webhook.perSecond, seconds: result.webhook.seconds }
		});
		const out = process.env.BENCH_NOTIFY_OUT ?? "notifications.json";
		fs.writeFileSync(path.join(__dirname, "results", out), JSON.stringify(result, null, 2) + "\n");
	} finally {
		await t.stop();
		await watcher.end();
		receiver.close();
		if (!process.env.BENCH_KEEP_DB) await db.drop();
		else console.error(db.name);
		await deleteRabbitObjects([namespace]).catch(() => undefined);
	}
}

main().then(
	() => process.exit(0),
	err => {
		console.error(err);
		process.exit(1);
	}
);
