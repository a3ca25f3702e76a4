// What the AI service knows about providers beyond routing requests: a connection test and the upstream's model list
// (made with the provider's real credentials through the same egress-checked transport as completions, so a test
// that passes means requests can pass), and the health and cooldown state the router keeps per deployment. That
// state lives in each AI replica's memory, so the organization's view asks every replica and merges the answers.
import type { Context, Service } from "moleculer";
import type OpenAI from "openai";
import type { ServiceSchema } from "../../lib/schema";
import { tenantSql } from "../../lib/db/tenant";
import { ExternalFailure } from "../../lib/errors";
import type { DeploymentHealth } from "./router";
import type { Run } from "./run";
import { UpstreamFailure, classify, readChatCompletion } from "./upstream";
import type { UpstreamClients } from "./upstream";
import type { Credentials } from "./upstream";

const PROBE_TIMEOUT_MS = 15_000;
const MAX_MODELS = 2000;

interface ChecksThis extends Service {
	health: DeploymentHealth;
	upstreams: UpstreamClients;
	providerCredentials(run: Run, provider: any): Promise<Credentials>;
	probe(ctx: Context<{ id: string }>, fn: (client: OpenAI, signal: AbortSignal) => Promise<unknown>): Promise<Probe>;
}

interface Probe {
	ok: boolean;
	latencyMs: number;
	result?: unknown;
	failure?: UpstreamFailure;
}

// An upstream's /models answer, read as OpenAI's list shape; anything else is not an OpenAI-compatible list.
async function readModelList(response: Response): Promise<{ id: string; context_window?: number }[]> {
	const type = response.headers.get("content-type") ?? "";
	if (!/^application\/([\w.-]+\+)?json\b/i.test(type.trim()))
		throw new UpstreamFailure("bad_response", "the upstream's model list is not JSON");
	const body: any = await response.json().catch(() => undefined);
	if (!body || !Array.isArray(body.data))
		throw new UpstreamFailure("bad_response", "the upstream's answer is not an OpenAI-compatible model list");
	return body.data
		.filter((m: any) => m && typeof m.id === "string" && m.id.length <= 200)
		.slice(0, MAX_MODELS)
		.map((m: any) => {
			// Some servers say how long a context the model takes (vLLM: max_model_len; others: context_length).
			const ctxLen = Number(m.context_window ?? m.context_length ?? m.max_model_len);
			return { id: m.id, ...(Number.isInteger(ctxLen) && ctxLen > 0 ? { context_window: ctxLen } : {}) };
		});
}

export const ProviderChecksMixin: Partial<ServiceSchema> = {
	actions: {
		// Called by ai-providers.test / ai-providers.upstreamModels for the caller's organization.
		probeProvider: {
			visibility: "public",
			permission: "ai:manage",
			params: { id: "string", what: { type: "enum", values: ["test", "models"] } },
			async handler(this: ChecksThis, ctx: Context<{ id: string; what: "test" | "models" }>) {
				const listModels = async (client: OpenAI, signal: AbortSignal) =>
					readModelList(await client.models.list({ signal }).asResponse());
				let probe = await this.probe(ctx, listModels);
				// Not every OpenAI-compatible server lists its models: then one token of a deployed chat model.
				const unlisted = probe.failure?.kind === "client_error" && probe.failure.status === 404;
				const deployed = unlisted
					? await tenantSql(ctx).one(
							`SELECT provider_model FROM ai_deployments WHERE provider_id = $1 AND organization_id = $org
							 AND kind = 'chat' ORDER BY enabled DESC, priority LIMIT 1`,
							[ctx.params.id]
						)
					: undefined;
				if (ctx.params.what === "test" && deployed) {
					const messages = [{ role: "user" as const, content: "ping" }];
					probe = await this.probe(ctx, async (client, signal) =>
						readChatCompletion(
							await client.chat.completions
								.create({ model: deployed.provider_model, messages, max_tokens: 1 }, { signal })
								.asResponse()
						).then(() => undefined)
					);
				}
				if (ctx.params.what === "models") {
					if (probe.failure) {
						const f = probe.failure;
						const status = f.kind === "client_error" ? (f.status === 404 ? 404 : 400) : 502;
						throw new ExternalFailure(f.message, status, "UPSTREAM_FAILED");
					}
					return { models: probe.result };
				}
				const f = probe.failure;
				const models = Array.isArray(probe.result) ? probe.result.length : undefined;
				return {
					ok: probe.ok,
					latencyMs: probe.latencyMs,
					...(models !== undefined ? { models } : {}),
					...(f
						? { error: { kind: f.kind, message: f.message, ...(f.status ? { status: f.status } : {}) } }
						: {})
				};
			}
		},

		// This replica's view of the organization's deployments (only those it has sent requests to).
		healthState: {
			visibility: "public",
			permission: "ai:read",
			async handler(this: ChecksThis, ctx: Context) {
				const rows = await tenantSql(ctx).rows("SELECT id FROM ai_deployments WHERE organization_id = $org");
				const now = Date.now();
				return rows.flatMap(({ id }: { id: string }) => {
					const h = this.health.peek(id);
					if (!h) return [];
					return [
						{
							deploymentId: id,
							failures: h.failures,
							coolingUntil: h.coolUntil > now ? new Date(h.coolUntil).toISOString() : null,
							latencyMs: h.latencyMs === undefined ? null : Math.round(h.latencyMs),
							inFlight: h.inFlight,
							status: h.coolUntil > now ? "cooling" : h.status
						}
					];
				});
			}
		},

		// Every AI replica's view merged: a deployment cooling on any replica is shown cooling (until the latest end).
		providerHealth: {
			rest: "GET /provider-health",
			permission: "ai:read",
			response: {
				type: "object",
				props: {
					replicas: "number|integer",
					deployments: {
						type: "array",
						items: {
							type: "object",
							$$name: "DeploymentHealth",
							props: {
								deploymentId: "uuid",
								providerId: "uuid",
								status: { type: "enum", values: ["healthy", "unhealthy", "cooling", "unknown"] },
								coolingUntil: "string|nullable",
								latencyMs: "number|integer|nullable",
								inFlight: "number|integer",
								failures: "number|integer"
							}
						}
					}
				}
			},
			async handler(this: ChecksThis, ctx: Context) {
				const nodes = new Set<string>(
					(this.broker.registry.getServiceList({ onlyAvailable: true }) as any[])
						.filter(s => s.name === "ai")
						.map(s => s.nodeID)
				);
				nodes.add(this.broker.nodeID);
				const answers = await Promise.all(
					[...nodes].map(nodeID =>
						ctx
							.call<any[], object>("ai.healthState", {}, { nodeID, timeout: 3000, retries: 0 })
							.catch(() => null)
					)
				);
				const deployments = await tenantSql(ctx).rows(
					"SELECT id, provider_id FROM ai_deployments WHERE organization_id = $org"
				);
				const merged = deployments.map((d: { id: string; provider_id: string }) => {
					const views = answers.flatMap(a => (a ?? []).filter(v => v.deploymentId === d.id));
					const cooling = views.map(v => v.coolingUntil).filter(Boolean) as string[];
					const latencies = views.map(v => v.latencyMs).filter((l): l is number => l !== null);
					return {
						deploymentId: d.id,
						providerId: d.provider_id,
						status: cooling.length
							? "cooling"
							: views.some(v => v.status === "unhealthy")
								? "unhealthy"
								: views.length
									? "healthy"
									: "unknown",
						coolingUntil: cooling.sort().pop() ?? null,
						latencyMs: latencies.length
							? Math.round(latencies.reduce((a, b) => a + b, 0) / latencies.length)
							: null,
						inFlight: views.reduce((n, v) => n + v.inFlight, 0),
						failures: views.reduce((n, v) => Math.max(n, v.failures), 0)
					};
				});
				return { replicas: answers.filter(Boolean).length, deployments: merged };
			}
		}
	},

	methods: {
		// One call to the provider (enabled or not) with its real credentials; its failure classified as the router
		// classifies them, secrets cut out of any upstream text.
		async probe(
			this: ChecksThis,
			ctx: Context<{ id: string }>,
			fn: (client: OpenAI, signal: AbortSignal) => Promise<unknown>
		): Promise<Probe> {
			const t = tenantSql(ctx);
			const provider = await t.byId(
				"provider",
				"SELECT * FROM ai_providers WHERE id = $1 AND organization_id = $org",
				ctx.params.id
			);
			const run = { org: t.organizationId, secrets: [] as string[] } as unknown as Run;
			const control = new AbortController();
			const ms = Math.min(provider.timeout_ms ?? PROBE_TIMEOUT_MS, PROBE_TIMEOUT_MS);
			const timer = setTimeout(
				() => control.abort(new UpstreamFailure("timeout", `upstream did not answer within ${ms} ms`)),
				ms
			);
			const started = Date.now();
			try {
				const credentials = await this.providerCredentials(run, provider);
				const { sdk } = this.upstreams.clientFor(provider, credentials);
				const result = await fn(sdk, control.signal);
				return { ok: true, latencyMs: Date.now() - started, result };
			} catch (err: any) {
				const failure =
					err?.code === 403 && err?.type === "FORBIDDEN"
						? new UpstreamFailure("client_error", "the AI service may not read the provider's key secret")
						: err?.code === 404 && err?.type === "NOT_FOUND"
							? new UpstreamFailure("client_error", "the provider's key secret does not exist")
							: classify(err, control.signal, run.secrets);
				return { ok: false, latencyMs: Date.now() - started, failure };
			} finally {
				clearTimeout(timer);
			}
		}
	}
};
