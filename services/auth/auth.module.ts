// Manifest of the auth module (lib/module.ts).
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "auth",
	description: "Users and sessions, organizations and members, teams, API keys; resolves credentials for the gateway",
	publishes: [],
	consumes: []
});
