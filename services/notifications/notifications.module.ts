// Manifest of the notifications module (lib/module.ts): every channel's events routed to people by type and their
// preferences, over in-app, e-mail and webhook channels, with a delivery status per notification and channel.
import { defineModule } from "../../lib/module";
import { setting } from "../../lib/settings";
import { parseHostRules } from "../../lib/egress";

export default defineModule({
	name: "notifications",
	description: "Notification Manager: routes every module's events to the inbox, e-mail and webhooks",
	tablePrefix: "notifications_",
	dependsOn: ["auth", "secrets"],
	permissions: {
		"notifications:read": {
			description: "Read one's own notifications, mark them read and choose one's own preferences",
			role: "viewer"
		},
		"notifications:manage": {
			description: "Configure the organization's e-mail and webhook channels and templates; see deliveries",
			role: "admin"
		}
	},
	// Reads the channel secrets it was granted (SMTP passwords, webhook signing keys) as service notifications.
	container: {
		environment: {
			SERVICE_CREDENTIALS:
				"notifications:${NOTIFICATIONS_SERVICE_CREDENTIAL:?set NOTIFICATIONS_SERVICE_CREDENTIAL}"
		}
	},
	settings: {
		retryBaseMs: setting.int({
			env: "NOTIFICATIONS_RETRY_BASE_MS",
			default: 5000,
			min: 1,
			max: 3_600_000,
			description: "first retry delay of a failed e-mail or webhook delivery (doubles per attempt, at most 1 h)"
		}),
		maxAttempts: setting.int({
			env: "NOTIFICATIONS_MAX_ATTEMPTS",
			default: 8,
			min: 1,
			max: 50,
			description: "attempts of an e-mail or webhook delivery before it is marked failed"
		}),
		pollMs: setting.int({
			env: "NOTIFICATIONS_POLL_MS",
			default: 1000,
			min: 10,
			max: 60_000,
			description: "how often each replica looks for due deliveries (new ones are sent at once)"
		}),
		coalesceMs: setting.int({
			env: "NOTIFICATIONS_COALESCE_MS",
			default: 300_000,
			min: 0,
			max: 86_400_000,
			description: "window in which repeated high-frequency events of one subject become one notification"
		}),
		allowedPrivateHosts: setting.custom({
			env: "NOTIFICATIONS_ALLOWED_PRIVATE_HOSTS",
			description:
				"internal hosts webhooks and SMTP servers may reach anyway (host names, addresses, CIDR ranges)",
			parse: raw => parseHostRules(raw)
		})
	},
	publishes: ["notifications.events"],
	// Every other module's channel, present and future.
	consumes: [],
	consumesAll: { group: "notifications" }
});
