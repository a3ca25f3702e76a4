// Builds one node of the platform: the broker from moleculer.config.ts, the health service, and the modules
// named by SERVICES (folders under services/), each folder's *.service.ts files (never its *.module.ts manifest).
import fs from "fs";
import path from "path";
import { ServiceBroker } from "moleculer";
import { brokerOptions } from "../moleculer.config";
import { Config, ConfigError } from "./config";
import { HealthService } from "./health";
import { moduleNames, SERVICES_DIR } from "./module";

export function serviceFiles(config: Config, dir = config.servicesDir ?? SERVICES_DIR): string[] {
	const known = moduleNames(dir);
	const wanted = config.services === "all" ? known : config.services;
	const files: string[] = [];
	for (const mod of wanted) {
		if (!known.includes(mod))
			throw new ConfigError("SERVICES", `unknown module "${mod}" (known: ${known.join(", ")})`);
		const folder = path.join(dir, mod);
		for (const f of fs.readdirSync(folder).sort())
			if (f.endsWith(".service.ts") || f.endsWith(".service.js")) files.push(path.join(folder, f));
	}
	return files;
}

export function createNode(
	config: Config,
	extra: Partial<ConstructorParameters<typeof ServiceBroker>[0]> = {},
	files: string[] = serviceFiles(config)
): ServiceBroker {
	const broker = new ServiceBroker({ ...brokerOptions(config), ...extra });
	broker.createService(HealthService);
	for (const file of files) broker.loadService(file);
	return broker;
}
