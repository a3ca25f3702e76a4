// Manifest of the auth module (lib/module.ts).
import { defineModule } from "../../lib/module";

export default defineModule({
	name: "auth",
	description: "Users and sessions, organizations and members, teams, API keys; resolves credentials for the gateway",
	// Its own tables (auth_invitations, auth_password_resets). users, organizations, teams, api_keys and the other
	// identity tables are the platform's (migrations/platform), shared by every module.
	tablePrefix: "auth_",
	publishes: [],
	consumes: [],
	permissions: {
		"auth:organizations-read": { description: "See the organization and its settings", role: "viewer" },
		"auth:organizations-manage": { description: "Rename the organization and change its settings", role: "admin" },
		"auth:organizations-own": { description: "Delete the organization", role: "owner" },
		"auth:members-read": { description: "See who belongs to the organization and their roles", role: "viewer" },
		"auth:members-manage": { description: "Add and remove members, change roles up to one's own", role: "admin" },
		"auth:teams-read": { description: "See teams and their members", role: "viewer" },
		"auth:teams-manage": { description: "Create, change and delete teams and their members", role: "admin" },
		"auth:api-keys-read": { description: "See one's own API keys", role: "viewer" },
		"auth:api-keys-write": { description: "Create API keys and revoke one's own", role: "member" },
		"auth:api-keys-manage": { description: "See and revoke every member's API keys", role: "admin" }
	}
});
