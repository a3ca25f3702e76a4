// The Anthropic-compatible POST /v1/messages: Anthropic's SDK and coding agents point their base URL at the
// platform and send a platform API key (x-api-key or a bearer token). A request is translated into the platform's
// chat request (ai.complete, or ai.stream for Anthropic's event stream), so it reaches any provider kind, and is
// logged and limited like /v1/chat/completions; answers and errors come back in Anthropic's shapes.
import crypto from "crypto";
import { Errors } from "moleculer";
import type { ServiceBroker } from "moleculer";
import type { ModuleRouteThis } from "../../lib/module-routes";
import { formatError } from "../gateway/errors";
import { estimateTokens } from "./usage";
import { relay } from "./sse";
import { EventsOfChunks, fromMessagesRequest, SseEvent, toMessage } from "./anthropic-inbound";
import { Untranslatable } from "./anthropic";

type Req = any;
type Res = any;

export const isMessagesRequest = (req: Req) => /^\/v1\/messages(\/|\?|$)/.test(req.originalUrl ?? req.url ?? "");

// Anthropic's error types by status (https://docs.anthropic.com/en/api/errors).
const ERROR_TYPES: Record<number, string> = {
	400: "invalid_request_error",
	401: "authentication_error",
	402: "billing_error",
	403: "permission_error",
	404: "not_found_error",
	413: "request_too_large",
	429: "rate_limit_error",
	504: "timeout_error",
	529: "overloaded_error"
};

export function anthropicError(err: unknown): { status: number; body: unknown } {
	if (err instanceof Untranslatable)
		return { status: 400, body: { type: "error", error: { type: "invalid_request_error", message: err.message } } };
	const { status: formatted, body } = formatError(err);
	const e = body.error;
	// The platform's 422 (a field it refuses) is Anthropic's 400; its message names the field.
	const status = formatted === 422 || e.code === "UNSUPPORTED_MEDIA_TYPE" ? 400 : formatted;
	const field = e.fields?.[0]?.field;
	const message = field && !e.message.includes(field) ? `${field}: ${e.message}` : e.message;
	const type = ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
	return { status, body: { type: "error", error: { type, message } } };
}

export function sendAnthropicError(req: Req, res: Res, err: unknown) {
	if (res.headersSent) return res.end();
	const { status, body } = anthropicError(err);
	if (status === 429) res.setHeader("Retry-After", String((err as any)?.data?.retryAfter ?? req.$retryAfter ?? 1));
	res.statusCode = status;
	res.setHeader("Content-Type", "application/json; charset=utf-8");
	res.end(JSON.stringify(body));
}

export async function createMessage(this: ModuleRouteThis, req: Req, res: Res) {
	try {
		const { params, stream } = fromMessagesRequest(req.body);
		if (!stream) {
			const completion: any = await req.$ctx.call("ai.complete", params);
			return this.sendJson(res, 200, toMessage(completion, params.model));
		}
		await streamMessage(this.broker, req.$ctx, res, params);
	} catch (err) {
		sendAnthropicError(req, res, err);
	}
}

// The platform's own estimate (the one its token limits reserve), for agents that size their context with it; the
// model must be one the caller may use (ai.models, which also makes this need a credential).
export async function countTokens(this: ModuleRouteThis, req: Req, res: Res) {
	try {
		const body = req.body;
		const { params } = fromMessagesRequest({ ...body, max_tokens: 1, stream: false });
		const models: { id: string }[] = await req.$ctx.call("ai.models");
		if (!models.some(m => m.id === params.model))
			throw new Errors.MoleculerClientError(`model "${params.model}" does not exist`, 404, "MODEL_NOT_FOUND");
		this.sendJson(res, 200, { input_tokens: estimateTokens([params.messages, params.tools ?? []]) });
	} catch (err) {
		sendAnthropicError(req, res, err);
	}
}

const sse = (e: SseEvent) => `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;

// Anthropic's event stream from the AI service's NDJSON lines. Nothing is written before the first token is there
// (ai.stream resolves then), so a failure until then is an ordinary error answer; a client that goes away cancels
// the upstream request on whichever AI replica runs it.
async function streamMessage(broker: ServiceBroker, ctx: any, res: Res, params: any) {
	const requestId = crypto.randomUUID();
	const events = new EventsOfChunks(requestId, params.model, estimateTokens([params.messages, params.tools ?? []]));
	const write = (line: any) => events.next(line).map(sse).join("");
	const format = {
		start: () => events.start().map(sse).join(""),
		line: write,
		done: write,
		error: (error: any) => write({ error })
	};
	await relay(broker, ctx, res, "ai.stream", { ...params, requestId }, format, { "request-id": requestId });
}
