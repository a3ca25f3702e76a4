// Manifest of the gateway module (lib/module.ts).
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "gateway",
	description: "REST API, routes the modules declare, socket.io bridge, OpenAPI, health, metrics and the web UI",
	dependsOn: ["auth"],
	// The only container with a host port.
	container: { environment: { PORT: "3000", HOST: "0.0.0.0" }, ports: ["${PORT:-3000}:3000"] },
	publishes: [],
	consumes: [],
	permissions: {}
});
