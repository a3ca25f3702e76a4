// Embeddings: the same routing, limits and log as chat, answered in the format the client asked for.
import type { EmbeddingCreateParams } from "openai/resources/embeddings";
import type { ServiceSchema } from "../../lib/schema";
import { Deployment } from "./router";
import { Run, servedBy } from "./run";
import { readEmbeddings } from "./upstream";
import type { Upstream } from "./upstream";
import { Usage, estimateTokens } from "./usage";
import { AiThis, AiContext } from "./ai.types";

export const EmbeddingActions: Partial<ServiceSchema> = {
	actions: {
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
			async handler(this: AiThis, ctx: AiContext) {
				const run = await this.begin(ctx, "embedding", false);
				const answer = await this.embed(run, ctx.params);
				ctx.meta.aiServed = run.served;
				return answer;
			}
		}
	},

	methods: {
		async embed(this: AiThis, run: Run, params: any) {
			try {
				const body = run.target.body;
				// Asked in base64 unless the client chose (a quarter of the bytes, as the SDK does). Many upstreams ignore
				// the parameter, so the answer is converted to what the client asked for (floats when it did not say).
				const format = body.encoding_format ?? "base64";
				const { result, deployment, provider, model } = await this.withFallbacks(
					run,
					async (d: Deployment, upstream: Upstream, signal: AbortSignal) =>
						readEmbeddings(
							await upstream.sdk.embeddings
								.create(
									{
										...body,
										encoding_format: format,
										model: d.provider_model
									} as EmbeddingCreateParams,
									{
										signal
									}
								)
								.asResponse(),
							body.encoding_format ?? "float"
						)
				);
				const usage: Usage = {
					prompt: result.usage?.prompt_tokens ?? estimateTokens(params.input),
					completion: 0,
					cached: 0
				};
				const response = {
					...result,
					model,
					usage: { prompt_tokens: usage.prompt, total_tokens: usage.prompt }
				};
				await this.finish(run, { deployment, provider, model, usage, response: null });
				run.served = servedBy(run, model, provider);
				return response;
			} catch (err) {
				throw await this.fail(run, err);
			} finally {
				this.inFlight.delete(run.requestId);
			}
		}
	}
};

export default EmbeddingActions;
