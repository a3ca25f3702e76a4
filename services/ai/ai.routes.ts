// The OpenAI-compatible API (/v1/chat/completions and /v1/responses with SSE streaming, /v1/embeddings, /v1/models,
// /v1/models/{id}): any OpenAI client or IDE extension points its base URL at the platform and authenticates with a
// platform API key. The gateway mounts these routes from the manifest (lib/module-routes.ts), with its JSON body
// limits and credentials.
import crypto from "crypto";
import type { ServiceBroker } from "moleculer";
import { actionMissing, invalid, unavailable } from "../../lib/errors";
import type { ModuleRoute, ModuleRouteThis } from "../../lib/module-routes";
import { formatError } from "../gateway/errors";
import { agentCompletion, streamAgentCompletion } from "./agent-completions";
import { countTokens, createMessage, isMessagesRequest, sendAnthropicError } from "./messages.route";
import type { ServedBy } from "./run";
import { relay, SERVED_HEADERS, servedHeaders, type SseFormat } from "./sse";

type Req = any;
type Res = any;

// OpenAI's error shape and types, from the platform's error.
export function openAiError(err: any): { status: number; body: unknown } {
	const { status, body } = formatError(err);
	const e = body.error;
	const field = e.fields?.[0]?.field ?? null;
	if (status === 422 || e.code === "MALFORMED_JSON" || e.code === "UNSUPPORTED_MEDIA_TYPE")
		return {
			status: 400,
			body: { error: { message: e.message, type: "invalid_request_error", param: field, code: null } }
		};
	const byStatus: Record<number, [string, string | null]> = {
		401: ["invalid_request_error", "invalid_api_key"],
		403: ["invalid_request_error", "permission_denied"],
		404: ["invalid_request_error", e.code === "MODEL_NOT_FOUND" ? "model_not_found" : "not_found"],
		429: ["rate_limit_error", "rate_limit_exceeded"]
	};
	const [type, code] = byStatus[status] ?? (status >= 500 ? ["api_error", null] : ["invalid_request_error", null]);
	return {
		status,
		body: { error: { message: e.message, type, param: e.code === "MODEL_NOT_FOUND" ? "model" : field, code } }
	};
}

function sendOpenAiError(req: Req, res: Res, err: any) {
	if (res.headersSent) return res.end();
	const { status, body } = openAiError(err);
	if (status === 429 || err?.data?.retryAfter)
		res.setHeader("Retry-After", String(err?.data?.retryAfter ?? req.$retryAfter ?? 1));
	res.statusCode = status;
	res.setHeader("Content-Type", "application/json; charset=utf-8");
	res.end(JSON.stringify(body));
}

const strip = ({ stream, stream_options, ...rest }: any) => ({
	rest,
	stream: !!stream,
	includeUsage: !!stream_options?.include_usage
});

// `prompt: { name, label?, version?, variables? }`: a managed prompt (the prompts module) rendered into the
// request. Its messages come first (the client's own, if any, after them), its model settings apply where the body
// sets none, and the completion log names the template and version. Without the prompts module: a 503.
async function withPrompt(ctx: any, body: any) {
	const { prompt, ...request } = body;
	if (prompt === undefined) return body;
	if (!prompt || typeof prompt !== "object" || Array.isArray(prompt) || typeof prompt.name !== "string")
		throw invalid("prompt", "must be an object naming a prompt template: { name, label?, version?, variables? }");
	const requestId = typeof request.requestId === "string" ? request.requestId : crypto.randomUUID();
	let rendered: any;
	try {
		rendered = await ctx.call("prompts.render", {
			name: prompt.name,
			label: prompt.label,
			version: prompt.version,
			variables: prompt.variables,
			subject: typeof request.user === "string" ? request.user : undefined,
			requestId
		});
	} catch (err) {
		if (actionMissing(err, "prompts.render"))
			throw unavailable("managed prompts are not available: the prompts module is not running");
		throw err;
	}
	ctx.meta.prompt = { templateId: rendered.template.id, versionId: rendered.version.id, variantId: null };
	const { model, ...settings } = rendered.model_settings ?? {};
	const messages = [...rendered.messages, ...(Array.isArray(request.messages) ? request.messages : [])];
	return { ...settings, ...request, model: request.model ?? model, messages, requestId };
}

const routes: ModuleRoute[] = [
	{
		path: "/v1",
		authentication: true,
		mappingPolicy: "restrict",
		exposedHeaders: SERVED_HEADERS,
		// An API client's hot calls skip moleculer-web's pipeline (services/gateway/direct.ts).
		direct: ["POST /chat/completions", "POST /responses", "POST /embeddings"],
		aliases: {
			async "POST /chat/completions"(this: ModuleRouteThis, req: Req, res: Res) {
				const ctx = req.$ctx;
				try {
					const body = req.body ?? {};
					if (typeof body !== "object" || Array.isArray(body))
						throw Object.assign(new Error("body must be a JSON object"), {
							code: 422,
							type: "VALIDATION_ERROR"
						});
					const prepared = await withPrompt(ctx, body);
					// Tool-sets named: tools run on the platform, as an agent run (agent-completions.ts).
					if (prepared.tool_sets !== undefined) {
						if (prepared.stream) return await streamAgentCompletion(ctx, res, prepared);
						return this.sendJson(res, 200, await agentCompletion(ctx, prepared));
					}
					const { rest, stream, includeUsage } = strip(prepared);
					if (!stream) {
						const answer = await ctx.call("ai.complete", rest);
						for (const [k, v] of Object.entries(servedHeaders(ctx.meta.aiServed))) res.setHeader(k, v);
						return this.sendJson(res, 200, answer);
					}
					await streamChat(this.broker, ctx, res, rest, includeUsage);
				} catch (err) {
					sendOpenAiError(req, res, err);
				}
			},
			async "POST /responses"(this: ModuleRouteThis, req: Req, res: Res) {
				const ctx = req.$ctx;
				try {
					const body = req.body ?? {};
					if (typeof body !== "object" || Array.isArray(body))
						throw Object.assign(new Error("body must be a JSON object"), {
							code: 422,
							type: "VALIDATION_ERROR"
						});
					if (!body.stream) {
						const answer = await ctx.call("ai.respond", body);
						for (const [k, v] of Object.entries(servedHeaders(ctx.meta.aiServed))) res.setHeader(k, v);
						return this.sendJson(res, 200, answer);
					}
					await relay(this.broker, ctx, res, "ai.respond", body, {
						// Server-sent events named by their type, as OpenAI sends them; the stream ends with the last one.
						line: l => `event: ${l.type}\ndata: ${JSON.stringify(l)}\n\n`,
						done: () => "",
						error: e => `event: error\ndata: ${JSON.stringify({ type: "error", ...e })}\n\n`
					});
				} catch (err) {
					sendOpenAiError(req, res, err);
				}
			},
			async "POST /embeddings"(this: ModuleRouteThis, req: Req, res: Res) {
				try {
					const answer = await req.$ctx.call("ai.embed", req.body ?? {});
					for (const [k, v] of Object.entries(servedHeaders(req.$ctx.meta.aiServed))) res.setHeader(k, v);
					this.sendJson(res, 200, answer);
				} catch (err) {
					sendOpenAiError(req, res, err);
				}
			},
			// Anthropic's Messages API (messages.route.ts), answering in its own shapes.
			"POST /messages": createMessage,
			"POST /messages/count_tokens": countTokens,
			async "GET /models"(this: ModuleRouteThis, req: Req, res: Res) {
				try {
					this.sendJson(res, 200, { object: "list", data: await req.$ctx.call("ai.models") });
				} catch (err) {
					sendOpenAiError(req, res, err);
				}
			},
			// Model names may hold slashes ("meta-llama/Llama-3.1-8B"): the id is the rest of the path.
			async "GET /models/*id"(this: ModuleRouteThis, req: Req, res: Res) {
				try {
					const raw = req.$params.id;
					const id = Array.isArray(raw) ? raw.join("/") : String(raw);
					const models: { id: string }[] = await req.$ctx.call("ai.models");
					const model = models.find(m => m.id === id);
					if (!model)
						throw Object.assign(new Error(`The model '${id}' does not exist`), {
							code: 404,
							type: "MODEL_NOT_FOUND"
						});
					this.sendJson(res, 200, model);
				} catch (err) {
					sendOpenAiError(req, res, err);
				}
			}
		},
		onError: (req: Req, res: Res, err: any) =>
			isMessagesRequest(req) ? sendAnthropicError(req, res, err) : sendOpenAiError(req, res, err)
	}
];
export default routes;

// Chat completion chunks; the usage chunk (asked for with stream_options.include_usage) is one of the answer's
// chunks: the same id, model and creation time. An upstream that broke mid-stream: an error event and no [DONE], so
// no client mistakes it for a finish.
function chatFormat(requestId: string, params: any, includeUsage: boolean, served?: ServedBy): SseFormat {
	let created = Math.floor(Date.now() / 1000);
	return {
		line(l) {
			if (typeof l.created === "number") created = l.created;
			return `data: ${JSON.stringify(l)}\n\n`;
		},
		done(l) {
			const model = served?.served_model ?? params.model;
			const usage = { id: `chatcmpl-${requestId}`, object: "chat.completion.chunk", created, model, choices: [] };
			return `${includeUsage ? `data: ${JSON.stringify({ ...usage, usage: l.usage })}\n\n` : ""}data: [DONE]\n\n`;
		},
		error: e => `data: ${JSON.stringify({ error: e })}\n\n`
	};
}

async function streamChat(broker: ServiceBroker, ctx: any, res: Res, params: any, includeUsage: boolean) {
	const requestId = params.requestId ?? crypto.randomUUID();
	await relay(broker, ctx, res, "ai.stream", { ...params, requestId }, served =>
		chatFormat(requestId, params, includeUsage, served)
	);
}
