// Manifest of the secrets module (lib/module.ts).
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "secrets",
	description: "Organization-scoped credentials: encrypted at rest, versioned, granted and audited",
	dependsOn: ["auth"],
	publishes: [],
	consumes: [],
	// Below secrets:manage, values are reached only through grants (per secret, checked in the handler).
	permissions: {
		"secrets:read": { description: "See secret names, metadata, versions and vault settings", role: "viewer" },
		"secrets:reveal": { description: "Reveal the values a read grant covers", role: "viewer" },
		"secrets:write": { description: "Create, update and roll back the secrets a write grant covers", role: "member" },
		"secrets:manage": {
			description: "Every secret without grants; delete, restore, destroy versions, grants, audit, import, export",
			role: "admin"
		},
		"secrets:own": { description: "Rotate the organization's data key", role: "owner" }
	}
});
