// In-process test brokers: the platform's real broker options and services, with a config built from `env`.
import path from "path";
import { BrokerOptions, ServiceBroker } from "moleculer";
import { loadConfig, setConfig, Config } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";
import { HealthService } from "../../lib/health";
import { acquireDb, releaseDb } from "../../lib/db";
import type { AuthInfo } from "../../lib/permissions";

export const ROOT = path.resolve(__dirname, "../..");

export async function createTestBroker(
	env: Record<string, string | undefined>,
	serviceFiles: string[],
	extra: BrokerOptions = {}
) {
	const config: Config = loadConfig({
		JWT_SECRET: "test-secret-test-secret-test-secret-0123",
		LOG_LEVEL: "warn",
		...env
	});
	setConfig(config);
	await acquireDb();
	const broker = new ServiceBroker({ ...brokerOptions(config), logger: false, ...extra });
	broker.createService(HealthService);
	for (const f of serviceFiles) broker.loadService(path.resolve(ROOT, f));
	await broker.start();
	return {
		broker,
		config,
		async stop() {
			await broker.stop();
			await releaseDb();
		}
	};
}

// Calling options that act as `auth` (what the gateway puts in meta after auth.resolve).
export const as = (auth: AuthInfo | undefined) => ({ meta: { auth } });
