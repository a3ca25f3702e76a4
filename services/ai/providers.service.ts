// AI providers: any OpenAI-compatible endpoint, or Anthropic's Messages API (kind "anthropic"). Credentials are
// named, not stored: the API key and any header that carries one live in the secrets service, and saving a provider
// grants the AI service read access to exactly those secrets. The host must be one the operator's policy lets the
// platform reach.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { moduleSettings } from "../../lib/config";
import aiModule from "./ai.module";
import { HostPolicy } from "../../lib/egress";
import { invalid } from "../../lib/errors";
import { isCredentialHeader } from "../../lib/redact";
import { AiConfigMixin } from "./config.mixin";
import { tenantSql } from "../../lib/db/tenant";
import { broadcast } from "../../lib/events/broadcast";
import type { HeaderValue } from "./upstream";
import { SECRET_ENVIRONMENT, SECRET_NAME } from "../../mixins/secrets-client.mixin";

// What Node's HTTP client accepts as a header name and value.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// Resolving a name at save time is advice, not the guard (that runs on every connection): a slow resolver does not
// hold the form up.
const SAVE_LOOKUP_TIMEOUT_MS = 2000;

// What the service's methods see as `this`.
interface ProvidersThis extends Service {
	hostPolicy: HostPolicy;
	allowSecret(ctx: Context, name: string, environment: string, field: string): Promise<void>;
	checkHost(baseUrl: string): Promise<void>;
}

const AiProvidersService: ServiceSchema = {
	name: "ai-providers",
	mixins: [
		AiConfigMixin(
			"ai_providers",
			["name", "kind", "base_url", "api_key_secret", "api_key_environment", "timeout_ms", "headers", "enabled"],
			{
				name: { type: "string", min: 1, max: 100, trim: true },
				// The API it speaks; requests and answers are translated for "anthropic" (anthropic-upstream.ts).
				kind: { type: "enum", values: ["openai", "anthropic"], optional: true },
				base_url: { type: "url", label: "Base URL" },
				api_key_secret: {
					type: "string",
					pattern: SECRET_NAME,
					optional: true,
					nullable: true,
					label: "Secret"
				},
				api_key_environment: {
					type: "string",
					pattern: SECRET_ENVIRONMENT,
					optional: true,
					label: "Environment"
				},
				timeout_ms: {
					type: "number",
					integer: true,
					min: 100,
					max: 600000,
					optional: true,
					convert: true,
					label: "Timeout (ms)"
				},
				// A typed value, or { secret: NAME } for a value from the vault (in the key's environment).
				headers: {
					type: "record",
					key: { type: "string", pattern: HEADER_NAME },
					value: [
						{ type: "string", max: 2000, pattern: HEADER_VALUE },
						{ type: "object", strict: true, props: { secret: { type: "string", pattern: SECRET_NAME } } }
					],
					optional: true
				},
				enabled: { type: "boolean", optional: true }
			},
			"/ai/providers",
			{ entityName: "provider" }
		)
	],

	actions: {
		// Lists the upstream's models with the provider's own key (or sends one token when it lists none); answers
		// whether that worked, how long it took and why not, in the words the router uses. Never the key.
		test: {
			rest: "POST /:id/test",
			permission: "ai:manage",
			params: { id: "string" },
			response: {
				type: "object",
				$$name: "ProviderTest",
				props: {
					ok: "boolean",
					latencyMs: "number|integer",
					models: "number|integer|optional",
					error: {
						type: "object",
						optional: true,
						props: { kind: "string", message: "string", status: "number|integer|optional" }
					}
				}
			},
			handler(ctx: Context<{ id: string }>) {
				return ctx.call("ai.probeProvider", { id: ctx.params.id, what: "test" });
			}
		},

		// The upstream's model list, to choose which to deploy (a 4xx the upstream gave, or a 502).
		upstreamModels: {
			rest: "GET /:id/upstream-models",
			permission: "ai:manage",
			params: { id: "string" },
			response: {
				type: "object",
				props: {
					models: {
						type: "array",
						items: {
							type: "object",
							$$name: "UpstreamModel",
							props: { id: "string", context_window: "number|integer|optional" }
						}
					}
				}
			},
			handler(ctx: Context<{ id: string }>) {
				return ctx.call("ai.probeProvider", { id: ctx.params.id, what: "models" });
			}
		},

		// Deploys chosen upstream models on the provider in one transaction: all of them, or (on any error) none.
		importModels: {
			rest: "POST /:id/import",
			permission: "ai:manage",
			params: {
				$$strict: true,
				id: "string",
				models: {
					type: "array",
					min: 1,
					max: 500,
					items: {
						type: "object",
						strict: true,
						props: {
							provider_model: { type: "string", min: 1, max: 200 },
							name: { type: "string", min: 1, max: 200, trim: true, optional: true },
							kind: { type: "enum", values: ["chat", "embedding"], optional: true },
							context_window: { type: "number", integer: true, positive: true, optional: true },
							capabilities: {
								type: "object",
								strict: true,
								props: {
									tools: "boolean|optional",
									json: "boolean|optional",
									vision: "boolean|optional"
								},
								optional: true
							}
						}
					}
				}
			},
			response: { type: "object", props: { created: "number|integer", skipped: "number|integer" } },
			async handler(this: ProvidersThis, ctx: Context<any>) {
				const t = tenantSql(ctx);
				await t.byId(
					"provider",
					"SELECT id FROM ai_providers WHERE id = $1 AND organization_id = $org",
					ctx.params.id
				);
				const models: any[] = ctx.params.models;
				// A model already deployed under that name on this provider is left as it is (importing twice is safe).
				const created = await t.transaction(async tx => {
					let n = 0;
					for (const m of models)
						n +=
							(
								await tx.query(
									`INSERT INTO ai_deployments (organization_id, provider_id, name, provider_model, kind, context_window, capabilities)
							 VALUES ($org, $1, $2, $3, $4, $5, $6) ON CONFLICT (organization_id, name, provider_id) DO NOTHING`,
									[
										ctx.params.id,
										m.name ?? m.provider_model,
										m.provider_model,
										m.kind ?? "chat",
										m.context_window ?? null,
										JSON.stringify(m.capabilities ?? {})
									]
								)
							).rowCount ?? 0;
					return n;
				});
				// The deployments service's cached lists and every replica's copy of the set-up are stale now.
				// (This node's cache, or the shared Redis one, here; other nodes' in-memory caches on the broadcast.)
				await this.broker.cacher?.clean("ai-deployments.**");
				await broadcast(this.broker, "cache.clean.ai-deployments").catch(() => undefined);
				broadcast(this.broker, "ai.config.changed", { organizationId: t.organizationId });
				return { created, skipped: models.length - created };
			}
		}
	},

	hooks: {
		before: {
			create: "checkProvider",
			update: "checkProvider"
		}
	},

	methods: {
		async checkProvider(this: ProvidersThis, ctx: Context<any>) {
			const p = ctx.params;
			if (p.base_url) await this.checkHost(p.base_url);
			for (const [name, value] of Object.entries<HeaderValue>(p.headers ?? {}))
				if (typeof value === "string" && isCredentialHeader(name)) {
					const why = `"${name}" carries a credential: choose a secret for it instead of typing the value`;
					throw invalid("headers", why);
				}
			// Secrets named (or moved to another environment) are checked in the environment the provider ends with.
			const moved = p.api_key_environment !== undefined;
			if (p.api_key_secret === undefined && p.headers === undefined && !moved) return;
			const current = p.id ? await ctx.call<any, any>("ai-providers.get", { id: p.id }) : {};
			const environment = p.api_key_environment ?? current.api_key_environment ?? "production";
			const key = p.api_key_secret !== undefined ? p.api_key_secret : moved ? current.api_key_secret : undefined;
			if (key) await this.allowSecret(ctx, key, environment, "api_key_secret");
			const headers = p.headers ?? (moved ? current.headers : undefined) ?? {};
			for (const [name, value] of Object.entries<HeaderValue>(headers))
				if (typeof value !== "string") {
					if (!value.secret)
						throw invalid("headers", `"${name}" needs a secret (its typed value was removed)`);
					await this.allowSecret(ctx, value.secret, environment, "headers");
				}
		},

		// The secret must exist in `environment` (shared, not a project's); the AI service gets read access to it.
		async allowSecret(this: ProvidersThis, ctx: Context, name: string, environment: string, field: string) {
			const found: any[] = await ctx.call("secrets.list", { environment, search: name });
			const secret = found.find(s => s.name === name && !s.project_id);
			if (!secret) throw invalid(field, `no secret named ${name} in ${environment}`);
			const grants: any[] = await ctx.call("secrets.grants", { secretId: secret.id });
			if (!grants.some(g => g.grantee_type === "service" && g.grantee_id === "ai" && !g.expires_at))
				await ctx.call("secrets.grant", {
					secretId: secret.id,
					permission: "read",
					granteeType: "service",
					granteeId: "ai"
				});
		},

		// A clear 422 now for a host the policy refuses; the AI service checks again on every connection.
		async checkHost(this: ProvidersThis, baseUrl: string) {
			const url = new URL(baseUrl);
			if (url.protocol !== "http:" && url.protocol !== "https:")
				throw invalid("base_url", "must start with http:// or https://");
			let timer: ReturnType<typeof setTimeout> | undefined;
			const slow = new Promise<undefined>(r => (timer = setTimeout(() => r(undefined), SAVE_LOOKUP_TIMEOUT_MS)));
			try {
				const refused = await Promise.race([this.hostPolicy.checkUrl(url), slow]);
				if (refused) throw invalid("base_url", refused.message);
			} finally {
				clearTimeout(timer);
			}
		}
	},

	created(this: Service) {
		const hosts = moduleSettings(aiModule).allowedPrivateHosts;
		(this as ProvidersThis).hostPolicy = new HostPolicy(hosts, { variable: "AI_ALLOWED_PRIVATE_HOSTS" });
	}
};

export default AiProvidersService;
