// Bare Moleculer broker options for the baseline pair: Moleculer's defaults plus the platform's transporter
// (taken from moleculer.config.ts itself, so prefetch and noDelay are the same) and serializer.
import type { BrokerOptions } from "moleculer";
import { loadConfig } from "../lib/config";
import { brokerOptions } from "../moleculer.config";

export function bareBrokerOptions(env: Record<string, string | undefined>): BrokerOptions {
	const platform = brokerOptions(loadConfig({ ...env, CACHER: "none" }));
	return {
		namespace: platform.namespace,
		transporter: platform.transporter,
		serializer: platform.serializer,
		logger: { type: "Console", options: { level: env.LOG_LEVEL || "warn", formatter: "short" } }
	};
}
