// AI: the LLM gateway of the platform. `ai.complete`, `ai.stream` and `ai.embed` route a request to a deployment
// of the named model (or preset), fall back along the model's chain, enforce rate limits shared through Redis, serve
// deterministic requests from the cache, and log and announce every completion. The request path lives beside this
// file: requests.ts (begin, limits, finish, record), attempts.ts (fallbacks), chat.ts, embeddings.ts.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getConfig, moduleSettings } from "../../lib/config";
import aiModule from "./ai.module";
import { getDb } from "../../lib/db";
import { TenantSql, tenantSql } from "../../lib/db/tenant";
import { broadcast } from "../../lib/events/broadcast";
import { HostPolicy } from "../../lib/egress";
import { EventsMixin } from "../../mixins/events.mixin";
import { SecretsClientMixin } from "../../mixins/secrets-client.mixin";
import { HousekeepingMixin } from "../../mixins/housekeeping.mixin";
import { DatabaseMixin } from "../../mixins/database.mixin";
import { CancellableMixin, stopInFlight } from "../../mixins/cancellable.mixin";
import { LocalCacheMixin } from "../../mixins/local-cache.mixin";
import { OrgSettingsMixin, Settings } from "../../mixins/org-settings.mixin";
import { RateLimitMixin } from "../../mixins/rate-limit.mixin";
import { UsageLimitsMixin } from "../../mixins/usage-limits.mixin";
import { CompletionCache } from "./cache";
import { LogWriter, pruneCompletionLogs } from "./log-writer";
import { DeploymentHealth } from "./router";
import { UpstreamClients, UpstreamFailure } from "./upstream";
import { createNodeFetch } from "./transport";
import { ProviderChecksMixin } from "./provider-checks.mixin";
import * as R from "./ai.responses";
import { logActions } from "./logs";
import { limitUsageActions } from "./limit-usage";
import { createResponse, streamResponse } from "./responses-api";
import type { AiContext, AiThis, OrgConfig } from "./ai.types";
import { chatParams, RESPONSES_FIELDS } from "./ai.params";
import RequestMethods, { presetFor } from "./requests";
import AttemptMethods from "./attempts";
import ChatMethods from "./chat";
import EmbeddingActions from "./embeddings";
import { agentParams, type StartParams } from "./agent-runs.service";

const ORG_CONFIG_TTL_MS = 30_000;
const ORG_CONFIG_MAX = 10_000;
const PRUNE_EVERY_MS = 10 * 60_000;

const AiService: ServiceSchema = {
	name: "ai",
	mixins: [
		DatabaseMixin,
		EventsMixin,
		SecretsClientMixin,
		HousekeepingMixin("prune", PRUNE_EVERY_MS, "prune the AI tables"),
		CancellableMixin("ai.cancel", why => new UpstreamFailure("cancelled", why), { drainOnStop: true }),
		RateLimitMixin("ai"),
		// The usage module's quotas and budgets, reserved before each call and settled after it.
		UsageLimitsMixin,
		// Connection tests, upstream model lists, and every replica's health view (provider-checks.mixin.ts).
		ProviderChecksMixin,
		// Each organization's AI set-up (orgConfig), dropped on every replica when any part of it changes.
		LocalCacheMixin<object, { organizationId: string }>("orgConfigs", {
			max: ORG_CONFIG_MAX,
			ttlMs: ORG_CONFIG_TTL_MS,
			dropOn: { "ai.config.changed": changed => (_cfg, org) => org === changed.organizationId }
		}),
		OrgSettingsMixin({
			table: "ai_settings",
			schemaName: "AiSettings",
			permissions: { read: "ai:read", write: "ai:manage" },
			touch: "updated_at",
			fields: {
				storeContent: { column: "store_content", default: false, rule: { type: "boolean" } },
				cacheTtlSeconds: {
					column: "cache_ttl_seconds",
					default: 3600,
					rule: {
						type: "number",
						integer: true,
						min: 1,
						max: 2592000,
						convert: true,
						label: "Cache lifetime (seconds)"
					}
				},
				cooldownSeconds: {
					column: "cooldown_seconds",
					default: 30,
					rule: {
						type: "number",
						integer: true,
						min: 1,
						max: 3600,
						convert: true,
						label: "Cooldown (seconds)"
					}
				},
				// null: keep the log for good.
				logRetentionDays: {
					column: "log_retention_days",
					default: null,
					rule: {
						type: "number",
						integer: true,
						min: 1,
						max: 3650,
						nullable: true,
						convert: true,
						label: "Keep the completion log (days)"
					}
				}
			}
		}),
		// The request path, in the files beside this one.
		RequestMethods,
		AttemptMethods,
		ChatMethods,
		EmbeddingActions
	],
	dependencies: ["secrets"],
	settings: { rest: "/ai" },

	actions: {
		// The three calls that reach a paid upstream are `external` (lib/external-calls.ts): sent once, and timed by
		// the provider's timeout (streams: until the first token, then between chunks), not by the request timeout.
		complete: {
			visibility: "public",
			permission: "ai:write",
			external: true,
			params: { $$strict: "remove", ...chatParams },
			async handler(this: AiThis, ctx: AiContext) {
				const run = await this.begin(ctx, "chat", false);
				const answer = await this.completeChat(run);
				ctx.meta.aiServed = run.served;
				ctx.meta.aiCost = run.cost;
				return answer;
			}
		},

		// Resolves once the first token is there (after any fallbacks), with a stream of NDJSON lines: chunks in
		// OpenAI's chat.completion.chunk shape, then {"done":true,...} — or {"error":...} if the upstream broke.
		// Published without a REST route: clients stream it over the socket's `stream` (services/gateway/socket-bridge.ts).
		stream: {
			permission: "ai:write",
			external: true,
			params: { $$strict: "remove", ...chatParams },
			async handler(this: AiThis, ctx: AiContext) {
				const run = await this.begin(ctx, "chat", true);
				const stream = await this.streamChat(run);
				ctx.meta.aiServed = run.served;
				return stream;
			}
		},

		// The Responses API, relayed to the upstream's /v1/responses (services/ai/responses-api.ts); with `stream`, NDJSON
		// of the upstream's events, then {"done":true,...} or {"error":...}.
		respond: {
			visibility: "public",
			permission: "ai:write",
			external: true,
			params: {
				$$strict: "remove",
				model: { type: "string", min: 1, max: 200 },
				input: [
					{ type: "string", max: 1_000_000 },
					{ type: "array", max: 1000 }
				],
				stream: { type: "boolean", optional: true },
				...Object.fromEntries(
					RESPONSES_FIELDS.filter(f => f !== "input").map(f => [f, { type: "any", optional: true }])
				),
				tags: { type: "array", items: "string", max: 10, optional: true },
				requestId: { type: "string", max: 100, optional: true }
			},
			async handler(this: AiThis, ctx: AiContext) {
				const stream = !!ctx.params.stream;
				const run = await this.begin(ctx, "chat", stream, "responses");
				const answer = stream ? await streamResponse(this, run) : await createResponse(this, run);
				ctx.meta.aiServed = run.served;
				return answer;
			}
		},

		// An agent run for other modules (planning): ai-agent-runs.start (agent-runs.service.ts), answering when the run ends
		// or pauses for an approval.
		agent: {
			visibility: "public",
			permission: "ai:write",
			external: true,
			params: { $$strict: "remove", ...agentParams },
			async handler(ctx: Context<StartParams>) {
				return ctx.call("ai-agent-runs.start", { ...ctx.params, stream: false });
			}
		},

		models: {
			rest: "GET /models",
			response: R.AvailableModels,
			permission: "ai:read",
			async handler(this: AiThis, ctx: Context) {
				const cfg = await this.orgConfig(tenantSql(ctx));
				const names = new Map<string, string>();
				for (const m of cfg.models) names.set(m.name, m.kind);
				// A preset is listed when it applies (see presetFor) and its model has an enabled deployment.
				for (const c of cfg.presets)
					if (presetFor(cfg, c.name) === c && cfg.models.some(m => m.name === c.model && m.kind === "chat"))
						names.set(c.name, "preset");
				return [...names].map(([id, kind]) => ({
					id,
					object: "model",
					created: 0,
					owned_by: "coder-ide",
					kind
				}));
			}
		},

		// The completion log: list, one entry, statistics and CSV export (services/ai/logs.ts).
		...logActions,
		...limitUsageActions
	},

	methods: {
		// Everything about an organization's AI set-up, read once and reused for a short while.
		async orgConfig(this: AiThis, t: TenantSql) {
			return this.orgConfigs.getOrLoad(t.organizationId, () => this.loadOrgConfig(t));
		},

		async loadOrgConfig(this: AiThis, t: TenantSql): Promise<OrgConfig> {
			const [providers, models, presets, rules, chains, limits, settings] = await Promise.all([
				t.rows("SELECT * FROM ai_providers WHERE organization_id = $org AND enabled"),
				t.rows("SELECT * FROM ai_deployments WHERE organization_id = $org"),
				t.rows("SELECT * FROM ai_presets WHERE organization_id = $org"),
				t.rows("SELECT * FROM ai_routing_rules WHERE organization_id = $org"),
				t.rows("SELECT * FROM ai_fallback_chains WHERE organization_id = $org"),
				t.rows("SELECT * FROM ai_rate_limits WHERE organization_id = $org"),
				this.readSettings(t) as Promise<Settings>
			]);
			return {
				providers: new Map(providers.map((p: any) => [p.id, p])),
				models: models.filter((m: any) => m.enabled && providers.some((p: any) => p.id === m.provider_id)),
				deploymentNames: new Set(models.map((m: any) => m.name)),
				presets,
				rules,
				chains,
				limits,
				settings
			};
		},

		// After `configure` (OrgSettingsMixin): every replica drops its copy of the organization's set-up.
		settingsChanged(this: AiThis, ctx: Context) {
			const org = tenantSql(ctx).organizationId;
			broadcast(this.broker, "ai.config.changed", { organizationId: org });
			this.orgConfigs.delete(org);
		},

		// Housekeeping: expired cached answers, and completion logs past their organization's retention.
		async prune(this: AiThis) {
			const db = await getDb();
			await this.cache.prune(db);
			const logs = await pruneCompletionLogs(db);
			if (logs) this.logger.info(`Pruned ${logs} completion log row(s) past their organization's retention`);
		}
	},

	created(this: Service) {
		const self = this as AiThis;
		const config = getConfig();
		self.health = new DeploymentHealth();
		// Every connection to a provider is checked against the operator's host policy (README: Provider hosts).
		const settings = moduleSettings(aiModule);
		const policy = new HostPolicy(settings.allowedPrivateHosts, { variable: "AI_ALLOWED_PRIVATE_HOSTS" });
		self.upstreams = new UpstreamClients(createNodeFetch(policy));
		self.cache = new CompletionCache(config.redisUrl, `${config.namespace}:ai-cache`);
		self.logWriter = new LogWriter(
			fn => self.withEvents(fn),
			settings.logBatchMs,
			(err, pending, dropped) =>
				this.logger.error(
					`Could not write completion logs (${err.message}); ${pending} waiting for a retry${dropped ? `, ${dropped} oldest given up (too many waiting)` : ""}`
				)
		);
	},

	async stopped(this: Service) {
		const self = this as AiThis;
		// Before the log writer closes, so the log rows of the requests that finish, or are cancelled, are still written.
		await stopInFlight(this, new UpstreamFailure("cancelled", "service stopping"));
		const unwritten = await self.logWriter.close();
		if (unwritten)
			this.logger.error(`${unwritten} completion log entries could not be written before stopping and are lost`);
		self.cache.close();
	}
};

export default AiService;
