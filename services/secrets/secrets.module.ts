// Manifest of the secrets module (lib/module.ts).
import { defineModule } from "../../lib/module";
import { setting } from "../../lib/settings";

export default defineModule({
	name: "secrets",
	description: "Organization-scoped credentials: encrypted at rest, versioned, granted and audited",
	dependsOn: ["auth"],
	// The only container that holds the master key, and the one that issues and checks every service's identity.
	container: {
		environment: {
			MASTER_KEY: "${MASTER_KEY:?set MASTER_KEY}",
			SERVICE_IDENTITY_KEY: "${SERVICE_IDENTITY_KEY:?set SERVICE_IDENTITY_KEY}"
		}
	},
	publishes: [],
	consumes: [],
	// Below secrets:manage, values are reached only through grants (per secret, checked in the handler).
	permissions: {
		"secrets:read": { description: "See secret names, metadata, versions and vault settings", role: "viewer" },
		"secrets:reveal": { description: "Reveal the values a read grant covers", role: "viewer" },
		"secrets:write": {
			description: "Create, update and roll back the secrets a write grant covers",
			role: "member"
		},
		"secrets:manage": {
			description:
				"Every secret without grants; delete, restore, destroy versions, grants, audit, import, export",
			role: "admin"
		},
		"secrets:own": { description: "Rotate the organization's data key", role: "owner" }
	},
	// Validated as keys by services/secrets/crypto.ts when the secrets service starts (only its nodes need them).
	settings: {
		masterKey: setting.string({ env: "MASTER_KEY", description: "secrets master key, 32 bytes as hex or base64" }),
		masterKeyFile: setting.string({
			env: "MASTER_KEY_FILE",
			description: "read the master key from a file instead"
		}),
		masterKeyPrevious: setting.string({
			env: "MASTER_KEY_PREVIOUS",
			description: "the old master key while rotating"
		})
	}
});
