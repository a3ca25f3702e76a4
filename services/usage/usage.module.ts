// Manifest of the usage module (lib/module.ts): metering of what AI calls use, pricing, quotas and budgets.
import { defineModule } from "../../lib/module";
import { setting } from "../../lib/settings";

export default defineModule({
	name: "usage",
	description: "Usage metering: exactly-once usage events, aggregates, pricing, quotas, budgets and their alerts",
	tablePrefix: "usage_",
	dependsOn: ["auth"],
	permissions: {
		"usage:read": {
			description: "See the organization's usage, costs, quotas, budgets and alerts",
			role: "viewer"
		},
		"usage:manage": { description: "Set prices, quotas and budgets; re-price a past period", role: "admin" }
	},
	publishes: ["usage.events"],
	// Embeddings through an AI deployment are metered from ai.events (kind "embedding"); embedding.events brings
	// only what the built-in local embedder embedded (embedding.usage.recorded), so nothing is counted twice.
	// mcp.events: each tool execution is metered, and counted against tool-call quotas.
	consumes: [
		{ channel: "ai.events", group: "usage" },
		{ channel: "ai.events", group: "usage-limits" },
		{ channel: "mcp.events", group: "usage" },
		{ channel: "mcp.events", group: "usage-limits" },
		{ channel: "embedding.events", group: "usage" }
	],
	settings: {
		// Metering's batched ingestion of ai.events (EventsMixin's batch option; bench/usage.ts measures them).
		batchMax: setting.int({
			env: "USAGE_BATCH_MAX",
			default: 500,
			min: 1,
			max: 5000,
			description: "usage events recorded per transaction at most"
		}),
		batchMs: setting.int({
			env: "USAGE_BATCH_MS",
			default: 20,
			min: 0,
			max: 10_000,
			description: "how long an idle usage consumer waits for more events before recording a batch"
		}),
		batchConcurrency: setting.int({
			env: "USAGE_BATCH_CONCURRENCY",
			default: 2,
			min: 1,
			max: 16,
			description: "batches of usage events one consumer records at once"
		}),
		// Read by the services that enforce quotas and budgets (mixins/usage-limits.mixin.ts: the ai replicas).
		reservationTtlMs: setting.int({
			env: "USAGE_RESERVATION_TTL_MS",
			default: 600_000,
			min: 1000,
			max: 86_400_000,
			description: "a quota or budget reservation a replica never settled (it crashed) is freed after this long"
		}),
		limitsCacheMs: setting.int({
			env: "USAGE_LIMITS_CACHE_MS",
			default: 60_000,
			min: 1000,
			max: 3_600_000,
			description: "each replica keeps an organization's quotas and budgets this long (changes drop them at once)"
		})
	}
});
