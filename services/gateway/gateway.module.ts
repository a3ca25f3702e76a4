// Manifest of the gateway module (lib/module.ts).
import { defineModule } from "../../lib/module";
import { setting } from "../../lib/settings";

export default defineModule({
	name: "gateway",
	description: "REST API, routes the modules declare, socket.io bridge, OpenAPI, health, metrics and the web UI",
	dependsOn: ["auth"],
	// The only container with a host port.
	container: { environment: { PORT: "3000", HOST: "0.0.0.0" }, ports: ["${PORT:-3000}:3000"] },
	publishes: [],
	consumes: [],
	permissions: {},
	settings: {
		// Load shedding (load-shedding.ts). Each request in flight holds tens of KiB until it is answered.
		maxInFlight: setting.int({
			env: "GATEWAY_MAX_IN_FLIGHT",
			default: 512,
			min: 0,
			max: 1_000_000,
			description:
				"API requests one gateway serves at once; past it a request gets 503 with Retry-After (0: no cap)"
		})
	}
});
