// Manifest of the gateway module (lib/module.ts).
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "gateway",
	description: "REST API, routes the modules declare, socket.io bridge, OpenAPI, health, metrics and the web UI",
	dependsOn: ["auth"],
	publishes: [],
	consumes: [],
	permissions: {}
});
