// A provider of kind "anthropic" behind the same openai SDK client as every other provider: the client's fetch is
// this translator, which sends the chat request as a Messages request ({base}/v1/messages, x-api-key,
// anthropic-version) through the platform's egress-checked fetch, and hands the SDK an OpenAI-shaped answer (a chat
// completion, an SSE stream of chunks, or an error in OpenAI's shape with the upstream's status). The router's
// timeouts, cancellation, fallbacks and failure classification (upstream.ts) then apply unchanged.
import { Readable } from "stream";
import type { Credentials } from "./upstream";
import type { Json } from "./json";
import {
	ANTHROPIC_VERSION,
	asksJson,
	ChunksOfEvents,
	fromMessage,
	isMessage,
	toMessagesRequest,
	Untranslatable
} from "./anthropic";
import { sseEvents } from "./sse";

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

// An answer that is not the Anthropic API's (classify in upstream.ts reports it as a bad response).
export class NotAnthropic extends Error {}

const MAX_ERROR_TEXT = 300;

// {base}/v1/<path> as the Anthropic SDK builds it; a base that already ends in /v1 is taken as meant.
export function apiUrl(base: string, path: string): string {
	const trimmed = base.replace(/\/+$/, "");
	return /\/v1$/.test(trimmed) ? `${trimmed}/${path}` : `${trimmed}/v1/${path}`;
}
export const messagesUrl = (base: string) => apiUrl(base, "messages");

// Anthropic's model list ({data: [{id, display_name, created_at}]}) as OpenAI's, for whoever lists a provider's models.
async function translateModels(url: string, response: Response): Promise<Response> {
	if (!response.ok) return translateError(url, response);
	let body: any;
	try {
		body = await response.json();
	} catch {
		body = undefined;
	}
	if (!Array.isArray(body?.data)) throw new NotAnthropic("the upstream's answer is not an Anthropic model list");
	const data = body.data
		.filter((m: unknown) => typeof (m as Json)?.id === "string")
		.map((m: Json) => ({
			id: m.id,
			object: "model",
			created: Math.floor((Date.parse(m.created_at) || 0) / 1000),
			owned_by: "anthropic"
		}));
	return made(url, 200, { object: "list", data });
}

// The parts of a Response the openai SDK and the router read, for an answer made here.
class MadeResponse {
	readonly ok: boolean;
	readonly statusText = "";
	readonly headers: Headers;
	bodyUsed = false;

	constructor(
		readonly url: string,
		readonly status: number,
		headers: Record<string, string>,
		private payload: string | Readable
	) {
		this.ok = status >= 200 && status < 300;
		this.headers = new Headers(headers);
	}

	get body(): Readable {
		return typeof this.payload === "string" ? Readable.from([Buffer.from(this.payload)]) : this.payload;
	}

	async text(): Promise<string> {
		if (this.bodyUsed) throw new TypeError("body already read");
		this.bodyUsed = true;
		if (typeof this.payload === "string") return this.payload;
		const chunks: Buffer[] = [];
		for await (const c of this.payload) chunks.push(Buffer.from(c));
		return Buffer.concat(chunks).toString("utf8");
	}

	async json(): Promise<unknown> {
		return JSON.parse(await this.text());
	}
}

const made = (url: string, status: number, body: unknown, extra: Record<string, string> = {}) =>
	new MadeResponse(
		url,
		status,
		{ "content-type": "application/json", ...extra },
		JSON.stringify(body)
	) as unknown as Response;

// A refusal in OpenAI's shape, as if the upstream had said it: the router reports it as the upstream's refusal.
const refusal = (url: string, status: number, message: string, param: string | null = null) =>
	made(url, status, { error: { message, type: "invalid_request_error", param, code: null } });

// Anthropic's {type: "error", error: {type, message}} becomes OpenAI's {error: {message, type}}, same status. Any
// other body (an HTML page, a proxy's text) is handed on as it came, for the router to name.
async function translateError(url: string, response: Response): Promise<Response> {
	const text = await response.text();
	const type = response.headers.get("content-type") ?? "";
	const extra: Record<string, string> = {};
	const retryAfter = response.headers.get("retry-after");
	if (retryAfter) extra["retry-after"] = retryAfter;
	let body: any;
	try {
		body = /json/i.test(type) ? JSON.parse(text) : undefined;
	} catch {
		body = undefined;
	}
	const e = body?.error;
	if (body?.type === "error" && typeof e?.message === "string")
		return made(
			url,
			response.status,
			{ error: { message: e.message, type: e.type ?? "api_error", code: null } },
			extra
		);
	const headers: Record<string, string> = { ...extra };
	if (type) headers["content-type"] = type;
	return new MadeResponse(url, response.status, headers, text.slice(0, MAX_ERROR_TEXT * 10)) as unknown as Response;
}

// The upstream's event stream as OpenAI's SSE lines. An error event becomes an error line (the SDK raises it as
// the upstream's error); a stream that ends before message_stop just ends (the router reports it as cut off).
async function* chunkLines(body: Readable, model: string, json: boolean): AsyncGenerator<string> {
	const chunks = new ChunksOfEvents(model, json);
	try {
		for await (const sse of sseEvents(body)) {
			let event: Json;
			try {
				event = JSON.parse(sse.data);
			} catch {
				throw new NotAnthropic("the upstream's answer is not an Anthropic stream (a line is not JSON)");
			}
			if (sse.event === "error" || event.type === "error") {
				const e = event.error ?? {};
				const error = {
					message: String(e.message ?? "upstream error"),
					type: e.type ?? "api_error",
					code: null
				};
				yield `data: ${JSON.stringify({ error })}\n\n`;
				return;
			}
			for (const chunk of chunks.next(event)) yield `data: ${JSON.stringify(chunk)}\n\n`;
			if (chunks.ended) {
				yield "data: [DONE]\n\n";
				return;
			}
		}
	} finally {
		body.destroy();
	}
}

export function anthropicFetch(fetch: Fetch, baseUrl: string, credentials: Credentials): Fetch {
	const endpoint = messagesUrl(baseUrl);
	return async (input, init = {}) => {
		const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
		const path = new URL(url).pathname;
		const headers: Record<string, string> = {
			"content-type": "application/json",
			"anthropic-version": ANTHROPIC_VERSION,
			// The provider's headers may choose another version or add anthropic-beta.
			...credentials.headers
		};
		if (credentials.apiKey) headers["x-api-key"] = credentials.apiKey;
		if (path.endsWith("/models") && (init.method ?? "GET") === "GET") {
			const models = await fetch(apiUrl(baseUrl, "models?limit=1000"), { headers, signal: init.signal });
			return translateModels(url, models);
		}
		if (!path.endsWith("/chat/completions"))
			return refusal(url, 400, "an Anthropic provider serves chat completions and its model list only");
		const body = JSON.parse(String(init.body ?? "{}"));
		let request: Json;
		try {
			request = toMessagesRequest(body, body.model);
		} catch (err) {
			if (err instanceof Untranslatable) return refusal(url, 400, err.message, err.field);
			throw err;
		}
		const response = await fetch(endpoint, {
			method: "POST",
			headers: { ...headers, accept: request.stream ? "text/event-stream" : "application/json" },
			body: JSON.stringify(request),
			signal: init.signal
		});
		if (!response.ok) return translateError(url, response);
		const type = response.headers.get("content-type") ?? "";
		if (request.stream) {
			if (!/^text\/event-stream\b/i.test(type.trim())) {
				(response.body as unknown as Readable | null)?.destroy?.();
				throw new NotAnthropic("the upstream's answer is not an Anthropic stream (not text/event-stream)");
			}
			const lines = Readable.from(
				chunkLines(response.body as unknown as Readable, body.model, asksJson(request))
			);
			return new MadeResponse(url, 200, { "content-type": "text/event-stream" }, lines) as unknown as Response;
		}
		let message: unknown;
		try {
			message = /json/i.test(type) ? await response.json() : undefined;
		} catch {
			message = undefined;
		}
		if (!isMessage(message)) throw new NotAnthropic("the upstream's answer is not an Anthropic message");
		return made(url, 200, fromMessage(message, asksJson(request)));
	};
}
