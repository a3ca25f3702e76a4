// Manifest of the secrets module (lib/module.ts).
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "secrets",
	description: "Organization-scoped credentials: encrypted at rest, versioned, granted and audited",
	dependsOn: ["auth"],
	publishes: [],
	consumes: []
});
