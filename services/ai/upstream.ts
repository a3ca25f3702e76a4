// Upstream calls, one client per provider and credentials (rebuilt when a rotated key arrives): the official openai
// SDK, and chat completions sent directly (chat-upstream.ts); the checks that an answer is OpenAI-shaped before anything of it is relayed, and the
// classification of failures the router falls back on.
import OpenAI from "openai";
import { Errors } from "moleculer";
import { redact } from "../../lib/redact";
import { ExternalFailure } from "../../lib/errors";
import { anthropicFetch, NotAnthropic } from "./anthropic-upstream";
import { ChatUpstream, directChat, sdkChat } from "./chat-upstream";
import { isObject } from "./json";

// A header's value is typed in, or names a secret (in the provider's key environment). `secret: null` marks a
// credential header whose typed value was removed on upgrade (migrations/ai/0004_provider_secret_headers.sql): a
// secret must be chosen.
export type HeaderValue = string | { secret: string | null };

export interface Provider {
	id: string;
	name: string;
	// The API it speaks: "openai" (any OpenAI-compatible endpoint) or "anthropic" (the Messages API).
	kind?: string;
	base_url: string;
	timeout_ms: number;
	headers: Record<string, HeaderValue>;
}

// What a call sends: the key and every header value, secrets resolved.
export interface Credentials {
	apiKey: string;
	headers: Record<string, string>;
}

// What an attempt calls a provider with: the SDK client (embeddings, the Responses API, an Anthropic provider's
// chat) and the chat path (chat-upstream.ts).
export interface Upstream {
	sdk: OpenAI;
	chat: ChatUpstream;
}

export class UpstreamClients {
	private clients = new Map<string, { fingerprint: string; upstream: Upstream }>();

	constructor(private fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>) {}

	clientFor(provider: Provider, credentials: Credentials): Upstream {
		// An edited base URL or header, or a rotated secret, gets a new client.
		const fingerprint = JSON.stringify([provider.kind, provider.base_url, credentials.apiKey, credentials.headers]);
		const hit = this.clients.get(provider.id);
		if (hit && hit.fingerprint === fingerprint) return hit.upstream;
		const anthropic = provider.kind === "anthropic";
		const sdk = new OpenAI({
			apiKey: credentials.apiKey || "none",
			baseURL: provider.base_url,
			// The router times each attempt (until the answer, or a stream's first token) with its own signal; the
			// SDK's timeout would also cut long streams, so it is only a last resort.
			timeout: 60 * 60 * 1000,
			// The router decides what happens after a failure (another deployment, a fallback model).
			maxRetries: 0,
			defaultHeaders: credentials.headers,
			// The SDK would print an unparsable stream line (upstream text) to the console; the router reports.
			logLevel: "off",
			// An Anthropic provider answers the SDK through a translator on the same egress-checked fetch.
			fetch: anthropic ? anthropicFetch(this.fetch, provider.base_url, credentials) : this.fetch
		});
		const chat = anthropic ? sdkChat(sdk) : directChat(this.fetch, provider.base_url, credentials);
		const upstream = { sdk, chat };
		this.clients.set(provider.id, { fingerprint, upstream });
		return upstream;
	}
}

export type FailureKind =
	| "timeout"
	| "connection"
	| "host_refused"
	| "bad_response"
	| "rate_limit"
	| "server_error"
	| "first_token_timeout"
	| "client_error"
	| "cancelled"
	// The deployment's provider does not offer what was asked (the Responses API): the next one may.
	| "unsupported";

export class UpstreamFailure extends Error {
	constructor(
		public kind: FailureKind,
		message: string,
		public status?: number
	) {
		super(message);
	}
	// Worth trying another deployment or model for.
	get retryable() {
		return this.kind !== "client_error" && this.kind !== "cancelled";
	}
}

// The client's error for a classified failure, once every deployment and fallback was tried. The upstream's
// failures are reported as such (ExternalFailure): the circuit breaker leaves them alone.
export function clientError(f: UpstreamFailure): Error {
	if (f.kind === "cancelled") return new Errors.MoleculerClientError("request cancelled", 499, "CANCELLED");
	if (f.kind === "client_error")
		return new ExternalFailure(f.message, f.status === 404 ? 404 : 400, "UPSTREAM_REFUSED");
	if (f.kind === "unsupported") return new ExternalFailure(f.message, 501, "NOT_SUPPORTED");
	const tried = `${f.message}; every deployment and fallback was tried`;
	if (f.kind === "rate_limit") return new ExternalFailure(tried, 429, "UPSTREAM_RATE_LIMITED", { retryAfter: 5 });
	const status = f.kind === "timeout" || f.kind === "first_token_timeout" ? 504 : 502;
	return new ExternalFailure(tried, status, "UPSTREAM_FAILED");
}

const MAX_UPSTREAM_TEXT = 300;
const isJson = (type: string | null | undefined) => /^application\/([\w.-]+\+)?json\b/i.test(type?.trim() ?? "");
// Only the media type of an answer is ever named (its parameters are the upstream's free text).
const mediaType = (type: string | null | undefined) => {
	const t = type?.split(";")[0].trim().toLowerCase() ?? "";
	return /^[\w.+-]{1,40}\/[\w.+-]{1,60}$/.test(t) ? t : t ? "unrecognised" : "none";
};
const notOpenAi = (what: string, why: string) =>
	new UpstreamFailure("bad_response", `the upstream's answer is not an OpenAI-compatible ${what} (${why})`);

// The one place where an upstream's failure becomes the platform's: messages keep the upstream's words only when it
// answered in OpenAI's error shape, and lose every secret value the call sent (`secrets`).
export function classify(err: any, signal?: AbortSignal, secrets: Iterable<string> = []): UpstreamFailure {
	if (err instanceof UpstreamFailure) return err;
	if (signal?.aborted) {
		const reason = signal.reason;
		if (reason instanceof UpstreamFailure) return reason;
		return new UpstreamFailure("cancelled", "request cancelled by the client");
	}
	const text = (s: string) => redact(s, secrets).slice(0, MAX_UPSTREAM_TEXT);
	const notAnthropic = err instanceof NotAnthropic ? err : err?.cause instanceof NotAnthropic ? err.cause : undefined;
	if (notAnthropic) return new UpstreamFailure("bad_response", notAnthropic.message);
	if (err instanceof OpenAI.APIConnectionTimeoutError) return new UpstreamFailure("timeout", "upstream timed out");
	if (err instanceof OpenAI.APIConnectionError) {
		const cause = err.cause as any;
		if (cause?.code === "EGRESS_REFUSED") return new UpstreamFailure("host_refused", `provider ${cause.message}`);
		const code = typeof cause?.code === "string" ? ` (${cause.code})` : "";
		return new UpstreamFailure("connection", `cannot reach the upstream${code}`);
	}
	if (err instanceof OpenAI.APIError && typeof err.status === "number") {
		const status = err.status;
		if (status >= 300 && status < 400) {
			const why = `the upstream answered with a redirect (${status}), which is not followed`;
			return new UpstreamFailure("bad_response", why, status);
		}
		if (status === 429) return new UpstreamFailure("rate_limit", "upstream rate limited the request", 429);
		if (status >= 500) return new UpstreamFailure("server_error", `upstream error ${status}`, status);
		if (status === 408) return new UpstreamFailure("timeout", "upstream timed out", 408);
		const type = err.headers?.get("content-type");
		// An HTML or text page is not an API's refusal: whatever answered is not the provider the URL promised.
		if (!isJson(type)) {
			const why = `the upstream answered ${status} with a non-OpenAI body (content type ${mediaType(type)})`;
			return new UpstreamFailure("bad_response", why, status);
		}
		const e: any = err.error;
		const said = typeof e === "string" ? e : typeof e?.message === "string" ? e.message : "";
		const quoted = said ? `: ${text(said)}` : "";
		return new UpstreamFailure("client_error", `upstream refused the request (${status})${quoted}`, status);
	}
	// An error event inside a stream, in OpenAI's shape.
	if (err instanceof OpenAI.APIError && typeof (err.error as any)?.message === "string")
		return new UpstreamFailure("server_error", `upstream error: ${text((err.error as any).message)}`);
	// A stream line that is not JSON (the SDK's parser threw on it; its message quotes the line).
	if (err instanceof SyntaxError) return notOpenAi("stream", "a line is not JSON");
	// A stream cut mid-way surfaces as a plain error from the SDK's reader.
	return new UpstreamFailure("connection", `upstream connection failed: ${text(err?.message ?? String(err))}`);
}

// The answers relayed to clients, checked before anything of them is: a page or a JSON document of another API
// is a failure of the upstream, never passed on.

export async function readChatCompletion(response: Response): Promise<any> {
	const type = response.headers.get("content-type");
	if (!isJson(type)) throw notOpenAi("chat completion", `content type ${mediaType(type)}`);
	let body: unknown;
	try {
		body = await response.json();
	} catch {
		throw notOpenAi("chat completion", "invalid JSON");
	}
	if (!isObject(body) || !Array.isArray(body.choices) || !body.choices.every(c => isObject(c) && isObject(c.message)))
		throw notOpenAi("chat completion", "no choices with a message");
	return body;
}

export function checkStreamResponse(response: Response) {
	const type = response.headers.get("content-type");
	if (!/^text\/event-stream\b/i.test(type?.trim() ?? ""))
		throw notOpenAi("stream", `content type ${mediaType(type)}`);
}

export function checkChunk(chunk: unknown) {
	const choice = (c: unknown) => isObject(c) && (c.delta === undefined || isObject(c.delta));
	if (!isObject(chunk) || !Array.isArray(chunk.choices) || !chunk.choices.every(choice))
		throw notOpenAi("stream", "a chunk has no choices");
}

// Embeddings in the format the client asked for (`want`), whatever the upstream answered: many OpenAI-compatible
// servers ignore `encoding_format`, and a client (the official SDK among them) that asked for base64 and got floats
// decodes them as base64 into nonsense.
export async function readEmbeddings(response: Response, want: "float" | "base64"): Promise<any> {
	const type = response.headers.get("content-type");
	if (!isJson(type)) throw notOpenAi("embedding list", `content type ${mediaType(type)}`);
	let body: unknown;
	try {
		body = await response.json();
	} catch {
		throw notOpenAi("embedding list", "invalid JSON");
	}
	const numbers = (e: unknown) => Array.isArray(e) && e.every(x => typeof x === "number");
	const item = (d: unknown) => isObject(d) && (numbers(d.embedding) || typeof d.embedding === "string");
	if (!isObject(body) || !Array.isArray(body.data) || !body.data.every(item))
		throw notOpenAi("embedding list", "no data with embeddings");
	for (const d of body.data) {
		if (want === "float" && typeof d.embedding === "string") {
			const bytes = Buffer.from(d.embedding, "base64");
			if (bytes.length % 4) throw notOpenAi("embedding list", "an embedding is not base64 float32");
			// Copied out: the decoded buffer may be a view into a pool at an unaligned offset.
			d.embedding = Array.from(new Float32Array(new Uint8Array(bytes).buffer));
		} else if (want === "base64" && Array.isArray(d.embedding))
			d.embedding = Buffer.from(new Float32Array(d.embedding).buffer).toString("base64");
	}
	return body;
}
