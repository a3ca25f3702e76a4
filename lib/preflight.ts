// Start-up checks: every configured piece of infrastructure answers before the broker starts, or the process
// stops with one line naming the variable to fix. Nothing hangs waiting for a server that is not there.
import amqp from "amqplib";
import Redis from "ioredis";
import type { Config } from "./config";
import { ConfigError } from "./config";
import { acquireDb } from "./db";
import { EmbeddedDbError, ProgressLog } from "./db/driver";
import { MigrationError } from "./db/migrate";

// Credentials never go to logs.
export function redact(url: string): string {
	try {
		const u = new URL(url);
		if (u.password) u.password = "***";
		return u.toString();
	} catch {
		return "<unparseable>";
	}
}

function withTimeout<T>(p: Promise<T>, what: string, ms: number): Promise<T> {
	return Promise.race([
		p,
		new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`no answer within ${ms} ms (${what})`)), ms).unref())
	]);
}

async function checkAmqp(variable: string, url: string, ms: number) {
	try {
		const conn = await withTimeout(amqp.connect(url), "AMQP handshake", ms);
		await conn.close();
	} catch (err: any) {
		throw new ConfigError(variable, `cannot connect to RabbitMQ at ${redact(url)}: ${err.message || err.code}`);
	}
}

async function checkRedis(variable: string, url: string, ms: number) {
	const client = new Redis(url, {
		lazyConnect: true,
		maxRetriesPerRequest: 0,
		retryStrategy: () => null,
		connectTimeout: ms
	});
	client.on("error", () => undefined);
	try {
		await withTimeout(
			client.connect().then(() => client.ping()),
			"Redis PING",
			ms
		);
	} catch (err: any) {
		throw new ConfigError(variable, `cannot connect to Redis at ${redact(url)}: ${err.message || err.code}`);
	} finally {
		client.disconnect();
	}
}

// The timeout bounds only a PostgreSQL server's answer; the embedded database's first start and migrations take as
// long as they need and report progress through `log`.
async function checkDatabase(config: Config, log?: ProgressLog) {
	try {
		await acquireDb({ log, connectTimeoutMs: config.preflightTimeoutMs });
	} catch (err: any) {
		if (err instanceof MigrationError) throw new ConfigError("migrations", err.message);
		const reason = err.message || err.code;
		if (config.databaseUrl)
			throw new ConfigError("DATABASE_URL", `cannot open PostgreSQL at ${redact(config.databaseUrl)}: ${reason}`);
		// The driver's own message names the directory and what to do.
		if (err instanceof EmbeddedDbError) throw new ConfigError("DATA_DIR", err.message);
		throw new ConfigError("DATA_DIR", `cannot open the embedded database in ${config.dataDir}: ${reason}`);
	}
}

export async function preflight(config: Config, log?: ProgressLog) {
	if (config.transporterUrl) await checkAmqp("TRANSPORTER", config.transporterUrl, config.preflightTimeoutMs);
	if (config.channelsUrl) await checkAmqp("CHANNELS_URL", config.channelsUrl, config.preflightTimeoutMs);
	if (config.cacherUrl) await checkRedis("CACHER", config.cacherUrl, config.preflightTimeoutMs);
	if (config.redisUrl && config.redisUrl !== config.cacherUrl)
		await checkRedis("REDIS_URL", config.redisUrl, config.preflightTimeoutMs);
	await checkDatabase(config, log);
}
