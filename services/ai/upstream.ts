// Upstream calls through the official openai SDK, one client per provider and key (rebuilt when a rotated key
// arrives), and the classification of failures the router falls back on.
import OpenAI from "openai";
import { nodeFetch } from "./transport";

export interface Provider {
	id: string;
	name: string;
	base_url: string;
	timeout_ms: number;
	headers: Record<string, string>;
}

const clients = new Map<string, { apiKey: string; client: OpenAI }>();

export function clientFor(provider: Provider, apiKey: string): OpenAI {
	const hit = clients.get(provider.id);
	if (hit && hit.apiKey === apiKey) return hit.client;
	const client = new OpenAI({
		apiKey: apiKey || "none",
		baseURL: provider.base_url,
		// The router times each attempt (until the answer, or a stream's first token) with its own signal; the
		// SDK's timeout would also cut long streams, so it is only a last resort.
		timeout: 60 * 60 * 1000,
		// The router decides what happens after a failure (another deployment, a fallback model).
		maxRetries: 0,
		defaultHeaders: provider.headers,
		fetch: nodeFetch
	});
	clients.set(provider.id, { apiKey, client });
	return client;
}

export type FailureKind = "timeout" | "connection" | "rate_limit" | "server_error" | "first_token_timeout" | "client_error" | "cancelled";

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

export function classify(err: any, signal?: AbortSignal): UpstreamFailure {
	if (err instanceof UpstreamFailure) return err;
	if (signal?.aborted) {
		const reason = signal.reason;
		if (reason instanceof UpstreamFailure) return reason;
		return new UpstreamFailure("cancelled", "request cancelled by the client");
	}
	if (err instanceof OpenAI.APIConnectionTimeoutError) return new UpstreamFailure("timeout", "upstream timed out");
	if (err instanceof OpenAI.APIConnectionError) return new UpstreamFailure("connection", "cannot reach the upstream");
	if (err instanceof OpenAI.APIError && typeof err.status === "number") {
		if (err.status === 429) return new UpstreamFailure("rate_limit", "upstream rate limited the request", 429);
		if (err.status >= 500) return new UpstreamFailure("server_error", `upstream error ${err.status}`, err.status);
		if (err.status === 408) return new UpstreamFailure("timeout", "upstream timed out", 408);
		return new UpstreamFailure("client_error", `upstream refused the request (${err.status}): ${sanitize(err.message)}`, err.status);
	}
	// A stream cut mid-way surfaces as a plain error from the SDK's reader.
	return new UpstreamFailure("connection", `upstream connection failed: ${sanitize(err?.message ?? String(err))}`);
}

// Upstream messages can echo request headers; anything that looks like a key is cut out.
export function sanitize(message: string): string {
	return message.replace(/(sk|cide|rk|pk)[-_][A-Za-z0-9_-]{6,}/g, "[redacted]").slice(0, 300);
}
