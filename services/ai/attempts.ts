// Trying deployments in order until one answers, with each provider's credentials resolved from secrets.
import type { ServiceSchema } from "../../lib/schema";
import { makeEvent } from "../../lib/events/outbox";
import { redact } from "../../lib/redact";
import { firstSuccess } from "../../lib/resilience";
import { Deployment, planAttempts } from "./router";
import { Run } from "./run";
import { UpstreamFailure, classify } from "./upstream";
import type { Credentials, HeaderValue } from "./upstream";
import { AiThis, AttemptFn, Served } from "./ai.types";

export const AttemptMethods: Partial<ServiceSchema> = {
	methods: {
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
						// A provider that lacks an API is not unhealthy: its chat requests must not be cooled down.
						if (failure.kind !== "unsupported" && this.health.failure(d.id, cooldownMs))
							healthChanged(d, "unhealthy");
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
		}
	}
};

export default AttemptMethods;
