// AI: the LLM gateway of the platform. `ai.complete`, `ai.stream` and `ai.embed` route a request to a deployment
// of the named model (or configuration), fall back along the model's chain, enforce rate limits shared through
// Redis, serve deterministic requests from the cache, and log and announce every completion.
import crypto from "crypto";
import type { Readable } from "stream";
import { Errors } from "moleculer";
import type { Context, Service } from "moleculer";
import type OpenAI from "openai";
import type { ServiceSchema } from "../../lib/schema";
import { getConfig, moduleSettings } from "../../lib/config";
import aiModule from "./ai.module";
import { getDb } from "../../lib/db";
import type { Queryable } from "../../lib/db";
import { TenantSql, tenantSql, where } from "../../lib/db/tenant";
import { makeEvent } from "../../lib/events/outbox";
import { broadcast } from "../../lib/events/broadcast";
import { HostPolicy } from "../../lib/egress";
import type { InFlight } from "../../lib/in-flight";
import type { LocalCache } from "../../lib/local-cache";
import { redact } from "../../lib/redact";
import { firstSuccess, withDeadline } from "../../lib/resilience";
import { ndjsonReadable } from "../../lib/ndjson";
import { EventsMixin } from "../../mixins/events.mixin";
import { SecretsClientMixin } from "../../mixins/secrets-client.mixin";
import { HousekeepingMixin } from "../../mixins/housekeeping.mixin";
import { DatabaseMixin } from "../../mixins/database.mixin";
import { CancellableMixin } from "../../mixins/cancellable.mixin";
import { LocalCacheMixin } from "../../mixins/local-cache.mixin";
import { OrgSettingsMixin, Settings } from "../../mixins/org-settings.mixin";
import { Limit, RateLimitMethods, RateLimitMixin } from "../../mixins/rate-limit.mixin";
import { CompletionCache, cacheKey } from "./cache";
import { completionValues, LogWriter, pruneCompletionLogs } from "./log-writer";
import { DeploymentHealth, Deployment, planAttempts } from "./router";
import { estimateOf, Outcome, RequestKind, Run } from "./run";
import { UpstreamClients, UpstreamFailure, classify, clientError } from "./upstream";
import { readChatCompletion, checkStreamResponse, checkChunk, readEmbeddings } from "./upstream";
import type { Credentials, HeaderValue } from "./upstream";
import { createNodeFetch } from "./transport";
import { costOf, usageOf, Usage, estimateTokens } from "./usage";
import * as R from "./ai.responses";

const ORG_CONFIG_TTL_MS = 30_000;
const ORG_CONFIG_MAX = 10_000;
const PRUNE_EVERY_MS = 10 * 60_000;
const message = {
	type: "object",
	props: {
		role: { type: "enum", values: ["system", "developer", "user", "assistant", "tool"] },
		// null or absent on an assistant turn that only calls tools, as OpenAI's SDK sends it back.
		content: { type: "multi", rules: [{ type: "string" }, { type: "array" }], nullable: true, optional: true },
		name: { type: "string", optional: true },
		tool_calls: { type: "array", optional: true },
		tool_call_id: { type: "string", optional: true }
	}
};
const chatParams = {
	model: { type: "string", min: 1, max: 200 },
	messages: { type: "array", items: message, min: 1, max: 1000 },
	temperature: { type: "number", min: 0, max: 2, optional: true },
	top_p: { type: "number", min: 0, max: 1, optional: true },
	max_tokens: { type: "number", integer: true, positive: true, optional: true },
	max_completion_tokens: { type: "number", integer: true, positive: true, optional: true },
	stop: [
		{ type: "string", optional: true },
		{ type: "array", items: "string", optional: true }
	],
	tools: { type: "array", optional: true },
	tool_choice: { type: "any", optional: true },
	response_format: { type: "object", optional: true },
	seed: { type: "number", integer: true, optional: true },
	user: { type: "string", max: 200, optional: true },
	presence_penalty: { type: "number", optional: true },
	frequency_penalty: { type: "number", optional: true },
	// Platform options: routing tags, cache opt-in (true) or bypass (false), a client-chosen id for cancellation.
	tags: { type: "array", items: "string", max: 10, optional: true },
	cache: { type: "boolean", optional: true },
	requestId: { type: "string", max: 100, optional: true }
};
const PASS_THROUGH = [
	"messages",
	"temperature",
	"top_p",
	"max_tokens",
	"max_completion_tokens",
	"stop",
	"tools",
	"tool_choice",
	"response_format",
	"seed",
	"user",
	"presence_penalty",
	"frequency_penalty"
];

// What the service's methods see as `this`: its own state, its methods and its mixins'.
interface AiThis extends Service, RateLimitMethods {
	health: DeploymentHealth;
	upstreams: UpstreamClients;
	cache: CompletionCache;
	logWriter: LogWriter;
	inFlight: InFlight;
	orgConfigs: LocalCache<OrgConfig>;
	withEvents<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
	readSettings(t: TenantSql): Promise<Settings>;
	resolveSecret(ref: { organizationId: string; environment: string; name: string }): Promise<string>;
	orgConfig(t: TenantSql): Promise<OrgConfig>;
	loadOrgConfig(t: TenantSql): Promise<OrgConfig>;
	begin(ctx: Context<any>, kind: RequestKind, stream: boolean): Promise<Run>;
	checkLimits(run: Run, model: string): Promise<void>;
	settleTokens(run: Run, tokens: number): Promise<void>;
	withFallbacks<T>(run: Run, attempt: AttemptFn<T>): Promise<Served<T>>;
	providerCredentials(run: Run, provider: any): Promise<Credentials>;
	completeChat(run: Run): Promise<unknown>;
	streamChat(run: Run): Promise<Readable>;
	embed(run: Run, params: any): Promise<unknown>;
	finish(
		run: Run,
		r: {
			deployment: Deployment;
			provider: any;
			model: string;
			usage: Usage;
			response: unknown;
			firstTokenMs?: number;
		}
	): Promise<void>;
	fail(run: Run, err: unknown): Promise<Error>;
	record(run: Run, r: Outcome): Promise<void>;
}

interface OrgConfig {
	providers: Map<string, any>;
	models: any[];
	presets: any[];
	rules: any[];
	chains: any[];
	limits: any[];
	settings: Settings;
}

type AttemptFn<T> = (d: Deployment, client: OpenAI, signal: AbortSignal, control: AbortController) => Promise<T>;
type Served<T> = { result: T; deployment: Deployment; provider: any; model: string; control: AbortController };

const AiService: ServiceSchema = {
	name: "ai",
	mixins: [
		DatabaseMixin,
		EventsMixin,
		SecretsClientMixin,
		HousekeepingMixin("prune", PRUNE_EVERY_MS, "prune the AI tables"),
		CancellableMixin("ai.cancel", why => new UpstreamFailure("cancelled", why)),
		RateLimitMixin("ai"),
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
		})
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
			async handler(this: AiThis, ctx: Context<any>) {
				const run = await this.begin(ctx, "chat", false);
				return this.completeChat(run);
			}
		},

		// Resolves once the first token is there (after any fallbacks), with a stream of NDJSON lines: chunks in
		// OpenAI's chat.completion.chunk shape, then {"done":true,...} — or {"error":...} if the upstream broke.
		// Published without a REST route: clients stream it over the socket's `stream` (services/gateway/socket-bridge.ts).
		stream: {
			permission: "ai:write",
			external: true,
			params: { $$strict: "remove", ...chatParams },
			async handler(this: AiThis, ctx: Context<any>) {
				const run = await this.begin(ctx, "chat", true);
				return this.streamChat(run);
			}
		},

		embed: {
			visibility: "public",
			permission: "ai:write",
			external: true,
			params: {
				$$strict: "remove",
				model: { type: "string", min: 1, max: 200 },
				input: [
					{ type: "string", max: 100_000 },
					{ type: "array", items: { type: "string", max: 100_000 }, min: 1, max: 2048 }
				],
				dimensions: { type: "number", integer: true, positive: true, optional: true },
				encoding_format: { type: "enum", values: ["float", "base64"], optional: true },
				user: { type: "string", optional: true },
				tags: { type: "array", items: "string", optional: true },
				requestId: { type: "string", max: 100, optional: true }
			},
			async handler(this: AiThis, ctx: Context<any>) {
				const run = await this.begin(ctx, "embedding", false);
				return this.embed(run, ctx.params);
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
				for (const c of cfg.presets) names.set(c.name, "preset");
				return [...names].map(([id, kind]) => ({
					id,
					object: "model",
					created: 0,
					owned_by: "coder-ide",
					kind
				}));
			}
		},

		logs: {
			rest: "GET /logs",
			response: R.CompletionLogs,
			permission: "ai:read",
			params: {
				$$strict: true,
				model: { type: "string", optional: true },
				status: { type: "enum", values: ["success", "error", "cancelled", "rate_limited"], optional: true },
				userId: { type: "uuid", optional: true },
				from: { type: "date", convert: true, optional: true },
				to: { type: "date", convert: true, optional: true },
				limit: { type: "number", integer: true, min: 1, max: 500, default: 100, convert: true }
			},
			async handler(ctx: Context<any>) {
				const p = ctx.params;
				const args: unknown[] = [];
				const w = where(
					args,
					["organization_id = $org", null],
					["(requested_model = ? OR served_model = ?)", p.model || undefined],
					["status = ?", p.status || undefined],
					["user_id = ?", p.userId || undefined],
					["created_at >= ?", p.from || undefined],
					["created_at < ?", p.to || undefined]
				);
				const db = tenantSql(ctx);
				const rows = (
					await db.query(
						`SELECT id, request_id, user_id, api_key_id, service, kind, requested_model, served_model, provider_id, fallback_path, stream, cache_hit,
						 prompt_tokens, completion_tokens, cached_tokens, cost, latency_ms, first_token_ms, status, error, created_at
						 FROM ai_completion_logs WHERE ${w} ORDER BY created_at DESC LIMIT ${p.limit}`,
						args
					)
				).rows;
				const totals = (
					await db.query(
						`SELECT count(*)::int AS requests, COALESCE(sum(prompt_tokens), 0)::int AS prompt_tokens, COALESCE(sum(completion_tokens), 0)::int AS completion_tokens,
						 COALESCE(sum(cost), 0) AS cost FROM ai_completion_logs WHERE ${w}`,
						args
					)
				).rows[0];
				return { rows, totals: { ...totals, cost: Number(totals.cost) } };
			}
		}
	},

	methods: {
		// Everything about an organization's AI set-up, read once and reused for a short while.
		async orgConfig(this: AiThis, t: TenantSql) {
			return this.orgConfigs.getOrLoad(t.organizationId, () => this.loadOrgConfig(t));
		},

		async loadOrgConfig(this: AiThis, t: TenantSql): Promise<OrgConfig> {
			const [providers, models, presets, rules, chains, limits, settings] = await Promise.all([
				t.rows("SELECT * FROM ai_providers WHERE organization_id = $org AND enabled"),
				t.rows("SELECT * FROM ai_deployments WHERE organization_id = $org AND enabled"),
				t.rows("SELECT * FROM ai_presets WHERE organization_id = $org"),
				t.rows("SELECT * FROM ai_routing_rules WHERE organization_id = $org"),
				t.rows("SELECT * FROM ai_fallback_chains WHERE organization_id = $org"),
				t.rows("SELECT * FROM ai_rate_limits WHERE organization_id = $org"),
				this.readSettings(t) as Promise<Settings>
			]);
			return {
				providers: new Map(providers.map((p: any) => [p.id, p])),
				models: models.filter((m: any) => providers.some((p: any) => p.id === m.provider_id)),
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

		// Resolves the request's model or configuration, checks rate limits, and registers it for cancellation.
		async begin(this: AiThis, ctx: Context<any>, kind: RequestKind, stream: boolean): Promise<Run> {
			const t = tenantSql(ctx);
			const auth = t.auth!;
			const org = t.organizationId;
			const cfg = await this.orgConfig(t);
			const p = ctx.params;
			const body: Record<string, any> = {};
			for (const k of kind === "chat" ? PASS_THROUGH : ["input", "dimensions", "encoding_format", "user"])
				if (p[k] !== undefined) body[k] = p[k];
			let model = p.model;
			const preset = cfg.presets.find((c: any) => c.name === model);
			if (preset && kind === "chat") {
				model = preset.model;
				if (body.temperature === undefined && preset.temperature !== null)
					body.temperature = Number(preset.temperature);
				if (body.max_tokens === undefined && preset.max_tokens !== null) body.max_tokens = preset.max_tokens;
				if (body.response_format === undefined && preset.response_format)
					body.response_format = preset.response_format;
				if (preset.system_prompt)
					body.messages = [{ role: "system", content: preset.system_prompt }, ...body.messages];
			}
			const chainRow = cfg.chains.find((c: any) => c.model === model);
			const chain = [model, ...(chainRow?.fallbacks ?? [])].filter(
				(m: string, i: number, all: string[]) => all.indexOf(m) === i
			);
			if (!chain.some((m: string) => cfg.models.some((d: any) => d.name === m && d.kind === kind)))
				throw new Errors.MoleculerClientError(
					`model "${p.model}" does not exist or has no enabled ${kind} deployment`,
					404,
					"MODEL_NOT_FOUND",
					[{ field: "model", message: "unknown model" }]
				);
			const run: Run = {
				requestId: p.requestId ?? ctx.requestID ?? crypto.randomUUID(),
				org,
				cfg,
				auth,
				target: {
					requested: p.model,
					chain,
					body,
					tags: p.tags ?? [],
					cache: p.cache,
					firstTokenTimeoutMs: chainRow?.first_token_timeout_ms ?? undefined
				},
				started: Date.now(),
				events: [],
				path: [],
				controller: new AbortController(),
				kind,
				stream,
				secrets: []
			};
			await this.checkLimits(run, model);
			try {
				// Announced now (with the next batch), not with the request's outcome: a long stream is seen as started.
				const started = { requestId: run.requestId, model: p.model, organizationId: org };
				await this.logWriter.add({ events: [makeEvent("ai.completion.started", started)] });
			} catch (err) {
				await this.settleTokens(run, 0);
				throw err;
			}
			this.inFlight.add(run.requestId, run.controller);
			return run;
		},

		// Every limit of the organization that applies to this request, counted for its subject (RateLimitMixin).
		async checkLimits(this: AiThis, run: Run, model: string) {
			const limits: Limit[] = [];
			for (const l of run.cfg.limits) {
				if (l.model && l.model !== model && l.model !== run.target.requested) continue;
				const { org, auth } = run;
				const bySubject: Record<string, string | undefined> = {
					organization: org,
					user: auth.userId,
					api_key: auth.apiKeyId
				};
				const subject = l.scope in bySubject ? bySubject[l.scope] : `${org}:${model}`;
				if (!subject) continue;
				const scope = l.model ? `${l.scope}:${l.model}` : l.scope;
				const perMinute = { requestsPerMinute: l.requests_per_minute, tokensPerMinute: l.tokens_per_minute };
				limits.push({ scope, key: `${l.id}:${subject}`, ...perMinute });
			}
			run.reservation = await this.admitLimits(limits, estimateOf(run.kind, run.target.body), async (l, kind) => {
				run.events.push(
					makeEvent("ai.ratelimit.exceeded", {
						organizationId: run.org,
						userId: run.auth.userId,
						scope: l.scope
					})
				);
				await this.record(run, { status: "rate_limited", error: `rate limit ${l.scope}: ${kind}` });
			});
		},

		// Replaces the request's token reservation by what it really used (0: nothing reached a model); once.
		async settleTokens(this: AiThis, run: Run, tokens: number) {
			const reservation = run.reservation;
			run.reservation = undefined;
			await this.settleLimits(reservation, tokens);
		},

		// Tries deployments in order until `attempt` succeeds; announces fallbacks and health changes. Each attempt
		// gets its own abort signal: the provider's timeout (until the answer, or a stream's first token) and the
		// client's cancellation both end it with a reason the router understands.
		async withFallbacks<T>(this: AiThis, run: Run, attempt: AttemptFn<T>): Promise<Served<T>> {
			const cfg = run.cfg;
			const cooldownMs = cfg.settings.cooldownSeconds * 1000;
			const healthChanged = (d: Deployment, status: string) =>
				run.events.push(
					makeEvent("ai.provider.health.changed", {
						providerId: d.provider_id,
						status,
						organizationId: run.org
					})
				);
			let last: UpstreamFailure | undefined;
			let previousModel: string | undefined;
			const served = await firstSuccess(
				planAttempts(this.health, cfg, run.target.chain, run.kind, run.target.tags),
				{
					signal: run.controller.signal,
					timeout: ({ deployment: d }) => {
						const ms = cfg.providers.get(d.provider_id).timeout_ms;
						return {
							ms,
							reason: () => new UpstreamFailure("timeout", `upstream did not answer within ${ms} ms`)
						};
					},
					attempt: async ({ model, deployment: d }, control) => {
						if (previousModel && previousModel !== model) {
							const fallback = {
								requestId: run.requestId,
								fromModel: previousModel,
								toModel: model,
								reason: last?.kind ?? "unavailable"
							};
							run.events.push(makeEvent("ai.completion.fallback", fallback));
						}
						previousModel = model;
						const provider = cfg.providers.get(d.provider_id);
						const started = Date.now();
						this.health.begin(d.id);
						try {
							const credentials = await this.providerCredentials(run, provider);
							const result = await attempt(
								d,
								this.upstreams.clientFor(provider, credentials),
								control.signal,
								control
							);
							if (this.health.success(d.id, Date.now() - started)) healthChanged(d, "healthy");
							run.path.push(`${model}@${provider.name}:ok`);
							return result;
						} finally {
							this.health.end(d.id);
						}
					},
					failed: ({ model, deployment: d }, err: any, control) => {
						const provider = cfg.providers.get(d.provider_id);
						const failure =
							err?.code === 403 && err?.type === "FORBIDDEN"
								? new UpstreamFailure(
										"client_error",
										`the AI service may not read a secret of provider ${provider.name} (${redact(err.message, run.secrets)})`
									)
								: classify(err, control.signal, run.secrets);
						run.path.push(`${model}@${provider.name}:${failure.kind}`);
						if (failure.kind === "cancelled" || !failure.retryable) return failure;
						if (this.health.failure(d.id, cooldownMs)) healthChanged(d, "unhealthy");
						last = failure;
						return undefined;
					}
				},
				() => last ?? new UpstreamFailure("connection", "no deployment available")
			);
			const { deployment, model } = served.candidate;
			return {
				result: served.result,
				deployment,
				provider: cfg.providers.get(deployment.provider_id),
				model,
				control: served.control
			};
		},

		// Housekeeping: expired cached answers, and completion logs past their organization's retention.
		async prune(this: AiThis) {
			const db = await getDb();
			await this.cache.prune(db);
			const logs = await pruneCompletionLogs(db);
			if (logs) this.logger.info(`Pruned ${logs} completion log row(s) past their organization's retention`);
		},

		// The key and header values a call to `provider` sends, secrets resolved (and remembered for redaction).
		async providerCredentials(this: AiThis, run: Run, provider: any): Promise<Credentials> {
			const environment = provider.api_key_environment;
			const read = (name: string): Promise<string> =>
				this.resolveSecret({ organizationId: run.org, environment, name });
			const apiKey = provider.api_key_secret ? await read(provider.api_key_secret) : "";
			const headers: Record<string, string> = {};
			for (const [name, value] of Object.entries<HeaderValue>(provider.headers ?? {})) {
				if (typeof value === "string") headers[name] = value;
				else if (value.secret) run.secrets.push((headers[name] = await read(value.secret)));
				else {
					const why = `provider ${provider.name}: header ${name} needs a secret (its typed value was removed)`;
					throw new UpstreamFailure("client_error", `${why}; choose one in the provider's settings`);
				}
			}
			if (apiKey) run.secrets.push(apiKey);
			return { apiKey, headers };
		},

		async completeChat(this: AiThis, run: Run) {
			const cfg = run.cfg;
			const body = run.target.body;
			// Deterministic requests only (temperature 0, or an explicit opt-in); `cache: false` bypasses.
			const deterministic = run.target.cache !== false && (body.temperature === 0 || run.target.cache === true);
			const key = deterministic ? cacheKey(run.org, run.target.requested, body) : undefined;
			try {
				if (key) {
					const cached = await this.cache.get(await getDb(), run.org, key);
					if (cached) {
						await this.settleTokens(run, 0);
						await this.cache.hit(await getDb(), run.org, key);
						run.events.push(
							makeEvent("ai.completion.completed", {
								requestId: run.requestId,
								model: run.target.requested,
								tokensUsed: 0,
								durationMs: Date.now() - run.started
							})
						);
						await this.record(run, {
							status: "success",
							cacheHit: true,
							servedModel: cached.model,
							response: cached
						});
						return { ...cached, id: `chatcmpl-${run.requestId}` };
					}
				}
				// The raw answer, read and checked here: the SDK has already turned any non-2xx into its error by then.
				const { result, deployment, provider, model } = await this.withFallbacks(
					run,
					async (d: Deployment, client: any, signal: AbortSignal) =>
						readChatCompletion(
							await client.chat.completions
								.create({ ...body, model: d.provider_model, stream: false }, { signal })
								.asResponse()
						)
				);
				const text = result.choices?.map((c: any) => c.message?.content ?? "").join("") ?? "";
				const usage = usageOf(result.usage, body.messages, text);
				const response = {
					...result,
					model: run.target.requested,
					usage: {
						prompt_tokens: usage.prompt,
						completion_tokens: usage.completion,
						total_tokens: usage.prompt + usage.completion,
						prompt_tokens_details: { cached_tokens: usage.cached }
					}
				};
				await this.finish(run, { deployment, provider, model, usage, response });
				if (key)
					await this.cache.set(await getDb(), run.org, key, model, response, cfg.settings.cacheTtlSeconds);
				return response;
			} catch (err) {
				throw await this.fail(run, err);
			} finally {
				this.inFlight.delete(run.requestId);
			}
		},

		async streamChat(this: AiThis, run: Run) {
			const body = run.target.body;
			let firstTokenAt = 0;
			let opened: any;
			try {
				opened = await this.withFallbacks(
					run,
					async (d: Deployment, client: any, signal: AbortSignal, control: AbortController) => {
						// The first token must arrive in time, or the next deployment gets the request.
						const deadline = run.target.firstTokenTimeoutMs;
						const late = () =>
							control.abort(
								new UpstreamFailure("first_token_timeout", `no first token within ${deadline} ms`)
							);
						return withDeadline(deadline, late, async () => {
							const { data: upstream, response } = await client.chat.completions
								.create(
									{
										...body,
										model: d.provider_model,
										stream: true,
										stream_options: { include_usage: true }
									},
									{ signal }
								)
								.withResponse();
							checkStreamResponse(response);
							const iterator = upstream[Symbol.asyncIterator]();
							const first = await iterator.next();
							// An aborted read may look like a clean end of stream: the signal says which it was.
							if (signal.aborted) throw signal.reason;
							if (!first.done) checkChunk(first.value);
							firstTokenAt = Date.now();
							return { iterator, first };
						});
					}
				);
			} catch (err) {
				this.inFlight.delete(run.requestId);
				throw await this.fail(run, err);
			}
			const { deployment, provider, model, control: attempt } = opened;
			const { iterator, first } = opened.result;
			const self = this;
			// A stream has no total deadline (a long answer takes minutes), only the provider's timeout for silence.
			const idleMs = provider.timeout_ms;
			const silent = () =>
				attempt.abort(new UpstreamFailure("timeout", `the upstream sent nothing for ${idleMs} ms`));
			const next = () => withDeadline(idleMs, silent, () => iterator.next());

			async function* lines() {
				let text = "";
				let reported: any;
				let finishReason: string | undefined;
				let finished = false;
				try {
					for (let step = first; !step.done; step = await next()) {
						const chunk = step.value;
						checkChunk(chunk);
						if (chunk.usage) reported = chunk.usage;
						for (const c of chunk.choices ?? []) {
							text += c.delta?.content ?? "";
							if (c.finish_reason) finishReason = c.finish_reason;
						}
						yield { ...chunk, model: run.target.requested };
					}
					if (attempt.signal.aborted) throw attempt.signal.reason;
					// Every complete OpenAI stream says why it finished; one that just stops was cut off.
					if (!finishReason)
						throw new UpstreamFailure("connection", "the upstream stream ended before the model finished");
					finished = true;
					const usage = usageOf(reported, body.messages, text);
					await self.finish(run, {
						deployment,
						provider,
						model,
						usage,
						firstTokenMs: firstTokenAt - run.started,
						response: { content: text }
					});
					yield {
						done: true,
						requestId: run.requestId,
						usage: {
							prompt_tokens: usage.prompt,
							completion_tokens: usage.completion,
							total_tokens: usage.prompt + usage.completion
						}
					};
				} catch (err) {
					finished = true;
					// A consumer that went away shows up here as an AbortError thrown into the generator.
					const gone = readable.destroyed;
					// An attempt aborted by its own deadline says why (its signal's reason).
					const signal = attempt.signal.aborted ? attempt.signal : run.controller.signal;
					const failure = gone
						? new UpstreamFailure("cancelled", "client disconnected")
						: classify(err, signal, run.secrets);
					if (failure.kind === "cancelled") attempt.abort(failure);
					const partial = usageOf(undefined, body.messages, text);
					await self.settleTokens(run, partial.prompt + partial.completion);
					await self.record(run, {
						status: failure.kind === "cancelled" ? "cancelled" : "error",
						error: failure.message,
						servedModel: model,
						provider,
						firstTokenMs: firstTokenAt - run.started,
						usage: partial,
						cost: costOf(partial, deployment)
					});
					// Tokens were sent already: the client gets an error, never a clean finish.
					if (!gone)
						yield {
							error: {
								message: `stream interrupted: ${failure.message}`,
								type: "upstream_error",
								code: failure.kind
							}
						};
				} finally {
					self.inFlight.delete(run.requestId);
					if (!finished) {
						// The consumer went away: stop the upstream request and log the cancellation.
						attempt.abort(new UpstreamFailure("cancelled", "client disconnected"));
						const partial = usageOf(undefined, body.messages, text);
						await self.settleTokens(run, partial.prompt + partial.completion);
						await self
							.record(run, {
								status: "cancelled",
								error: "client disconnected",
								servedModel: model,
								provider,
								firstTokenMs: firstTokenAt - run.started,
								usage: partial,
								cost: costOf(partial, deployment)
							})
							.catch(() => undefined);
					}
				}
			}
			// A consumer that destroys the stream (a client gone) cancels the upstream request at once.
			const readable = ndjsonReadable(lines(), () =>
				run.controller.abort(new UpstreamFailure("cancelled", "client disconnected"))
			);
			return readable;
		},

		async embed(this: AiThis, run: Run, params: any) {
			try {
				const body = run.target.body;
				// Asked in base64 unless the client chose (a quarter of the bytes, as the SDK does), decoded for it then.
				const format = body.encoding_format ?? "base64";
				const { result, deployment, provider, model } = await this.withFallbacks(
					run,
					async (d: Deployment, client: any, signal: AbortSignal) =>
						readEmbeddings(
							await client.embeddings
								.create({ ...body, encoding_format: format, model: d.provider_model }, { signal })
								.asResponse(),
							!body.encoding_format
						)
				);
				const usage: Usage = {
					prompt: result.usage?.prompt_tokens ?? estimateTokens(params.input),
					completion: 0,
					cached: 0
				};
				const response = {
					...result,
					model: run.target.requested,
					usage: { prompt_tokens: usage.prompt, total_tokens: usage.prompt }
				};
				await this.finish(run, { deployment, provider, model, usage, response: null });
				return response;
			} catch (err) {
				throw await this.fail(run, err);
			} finally {
				this.inFlight.delete(run.requestId);
			}
		},

		async finish(
			this: AiThis,
			run: Run,
			r: {
				deployment: Deployment;
				provider: any;
				model: string;
				usage: Usage;
				response: any;
				firstTokenMs?: number;
			}
		) {
			const tokens = r.usage.prompt + r.usage.completion;
			run.events.push(
				makeEvent("ai.completion.completed", {
					requestId: run.requestId,
					model: r.model,
					tokensUsed: tokens,
					durationMs: Date.now() - run.started,
					organizationId: run.org
				})
			);
			await this.settleTokens(run, tokens);
			await this.record(run, {
				status: "success",
				servedModel: r.model,
				provider: r.provider,
				usage: r.usage,
				cost: costOf(r.usage, r.deployment),
				response: r.response,
				firstTokenMs: r.firstTokenMs
			});
		},

		// Turns any failure into the client's error and records it; the upstream's words are kept, its keys never.
		async fail(this: AiThis, run: Run, err: unknown): Promise<Error> {
			await this.settleTokens(run, 0);
			if (err instanceof Errors.MoleculerError) return err;
			const f = classify(err, run.controller.signal, run.secrets);
			if (f.kind !== "cancelled")
				run.events.push(
					makeEvent("ai.completion.failed", {
						requestId: run.requestId,
						model: run.target.requested,
						error: f.message,
						organizationId: run.org
					})
				);
			await this.record(run, { status: f.kind === "cancelled" ? "cancelled" : "error", error: f.message }).catch(
				() => undefined
			);
			return clientError(f);
		},

		// One completion-log row and the request's events, written together (batched off the request's path).
		async record(this: AiThis, run: Run, r: Outcome) {
			const events = run.events.splice(0);
			await this.logWriter.add({ events, values: completionValues(run, r, run.cfg.settings.storeContent) });
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
		// Before the log writer closes, so the cancelled requests' log rows are still written.
		self.inFlight.abortAll(new UpstreamFailure("cancelled", "service stopping"));
		const unwritten = await self.logWriter.close();
		if (unwritten)
			this.logger.error(`${unwritten} completion log entries could not be written before stopping and are lost`);
		self.cache.close();
	}
};

export default AiService;
