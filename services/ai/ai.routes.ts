// The OpenAI-compatible API (/v1/chat/completions with SSE streaming, /v1/embeddings, /v1/models): any OpenAI client
// or IDE extension points its base URL at the platform and authenticates with a platform API key. The gateway mounts
// these routes from the manifest (lib/module-routes.ts), with its JSON body limits and credentials.
import crypto from "crypto";
import type { ServiceBroker } from "moleculer";
import { cancelCall } from "../../lib/cancel";
import type { ModuleRoute, ModuleRouteThis } from "../../lib/module-routes";
import { ndjson } from "../../lib/ndjson";
import { formatError } from "../gateway/errors";
import { countTokens, createMessage, isMessagesRequest, sendAnthropicError } from "./messages.route";

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
	if (status === 429) res.setHeader("Retry-After", String(err?.data?.retryAfter ?? req.$retryAfter ?? 1));
	res.statusCode = status;
	res.setHeader("Content-Type", "application/json; charset=utf-8");
	res.end(JSON.stringify(body));
}

const strip = ({ stream, stream_options, n, ...rest }: any) => ({
	rest,
	stream: !!stream,
	includeUsage: !!stream_options?.include_usage,
	n
});

const routes: ModuleRoute[] = [
	{
		path: "/v1",
		authentication: true,
		mappingPolicy: "restrict",
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
					const { rest, stream, includeUsage, n } = strip(body);
					if (n !== undefined && n !== 1)
						throw Object.assign(new Error("only n = 1 is supported"), {
							code: 422,
							type: "VALIDATION_ERROR",
							data: [{ field: "n", message: "only 1 is supported" }]
						});
					if (!stream) return this.sendJson(res, 200, await ctx.call("ai.complete", rest));
					await streamChat(this.broker, ctx, res, rest, includeUsage);
				} catch (err) {
					sendOpenAiError(req, res, err);
				}
			},
			async "POST /embeddings"(this: ModuleRouteThis, req: Req, res: Res) {
				try {
					this.sendJson(res, 200, await req.$ctx.call("ai.embed", req.body ?? {}));
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
			}
		},
		onError: (req: Req, res: Res, err: any) =>
			isMessagesRequest(req) ? sendAnthropicError(req, res, err) : sendOpenAiError(req, res, err)
	}
];
export default routes;

// Server-sent events from the AI service's NDJSON stream. A client that goes away cancels the upstream request on
// whichever AI replica runs it.
async function streamChat(broker: ServiceBroker, ctx: any, res: Res, params: any, includeUsage: boolean) {
	const requestId = params.requestId ?? crypto.randomUUID();
	const upstream: any = await ctx.call("ai.stream", { ...params, requestId });
	let ended = false;
	res.on("close", () => {
		if (ended) return;
		cancelCall(broker, "ai", requestId);
		upstream.destroy?.();
	});
	res.writeHead(200, {
		"Content-Type": "text/event-stream; charset=utf-8",
		"Cache-Control": "no-cache",
		Connection: "keep-alive",
		"X-Request-Id": requestId
	});
	res.flushHeaders?.();
	try {
		for await (const line of ndjson(upstream)) {
			if (line.done) {
				if (includeUsage)
					res.write(
						`data: ${JSON.stringify({ id: `chatcmpl-${requestId}`, object: "chat.completion.chunk", model: params.model, choices: [], usage: line.usage })}\n\n`
					);
				res.write("data: [DONE]\n\n");
				break;
			}
			// An upstream that broke mid-stream: an error event, and no [DONE], so no client mistakes it for a finish.
			if (line.error) {
				res.write(`data: ${JSON.stringify({ error: line.error })}\n\n`);
				break;
			}
			if (line.usage && !includeUsage) delete line.usage;
			if (line.choices?.length === 0 && !includeUsage) continue;
			res.write(`data: ${JSON.stringify(line)}\n\n`);
		}
	} catch {
		if (!res.destroyed)
			res.write(
				`data: ${JSON.stringify({ error: { message: "stream interrupted", type: "api_error", code: null } })}\n\n`
			);
	} finally {
		ended = true;
		res.end();
	}
}
