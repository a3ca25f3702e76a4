// Server-sent events: read from an upstream's byte stream, and written from the AI service's NDJSON streams for the
// /v1 routes (OpenAI's and Anthropic's shapes).
import crypto from "crypto";
import { StringDecoder } from "string_decoder";
import type { ServiceBroker } from "moleculer";
import { cancelCall } from "../../lib/cancel";
import { ndjson } from "../../lib/ndjson";
import type { ServedBy } from "./run";

// Server-sent events from a byte stream: `event:` and `data:` fields, an event per blank line; comments skipped.
export async function* sseEvents(
	body: AsyncIterable<Buffer | string> | Iterable<Buffer | string>
): AsyncGenerator<{ event: string; data: string }> {
	let rest = "";
	let event = "";
	let data: string[] = [];
	const field = function* (line: string) {
		if (line === "") {
			if (data.length) yield { event: event || "message", data: data.join("\n") };
			event = "";
			data = [];
			return;
		}
		if (line.startsWith(":")) return;
		const colon = line.indexOf(":");
		const name = colon < 0 ? line : line.slice(0, colon);
		const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
		if (name === "event") event = value;
		else if (name === "data") data.push(value);
	};
	// Bytes are decoded across chunks: a character may be split between two.
	const decoder = new StringDecoder("utf8");
	for await (const chunk of body) {
		rest += typeof chunk === "string" ? chunk : decoder.write(chunk);
		let i: number;
		while ((i = rest.search(/\r\n|\r|\n/)) >= 0) {
			// A CR that ends the chunk may be the first half of a CRLF: wait for the next byte.
			if (rest[i] === "\r" && i === rest.length - 1) break;
			const line = rest.slice(0, i);
			rest = rest.slice(rest[i] === "\r" && rest[i + 1] === "\n" ? i + 2 : i + 1);
			yield* field(line);
		}
	}
	rest += decoder.end();
	yield* field(rest.replace(/\r$/, ""));
	yield* field("");
}

type Res = any;

// How a stream's NDJSON lines become server-sent events.
export interface SseFormat {
	// Written once, before the first line (an event stream's opening events).
	start?(): string;
	line(line: any): string;
	done(line: any): string;
	error(error: any): string;
}

// Header values are ASCII: anything else in a model or provider name (and the list's comma) is percent-encoded.
const headerValue = (s: string) => s.replace(/[^\x20-\x2b\x2d-\x7e]/g, c => encodeURIComponent(c));

// Which model answered and the way there, for clients that cannot see the body's `coder` (a stream's chunks).
export const SERVED_HEADERS = [
	"x-coder-requested-model",
	"x-coder-served-model",
	"x-coder-provider",
	"x-coder-fallback-path",
	"x-coder-cache"
];

export function servedHeaders(served: ServedBy | undefined): Record<string, string> {
	if (!served) return {};
	return {
		"x-coder-requested-model": headerValue(served.requested_model),
		"x-coder-served-model": headerValue(served.served_model),
		...(served.provider ? { "x-coder-provider": headerValue(served.provider) } : {}),
		"x-coder-fallback-path": served.fallback_path.map(headerValue).join(", "),
		"x-coder-cache": served.cache_hit ? "hit" : "miss"
	};
}

// Server-sent events from an AI action's NDJSON stream, with the x-coder-* headers of the model that answered. A
// client that goes away cancels the upstream request on whichever AI replica runs it.
export async function relay(
	broker: ServiceBroker,
	ctx: any,
	res: Res,
	action: string,
	params: any,
	format: SseFormat | ((served?: ServedBy) => SseFormat),
	headers: Record<string, string> = {}
) {
	const requestId = params.requestId ?? crypto.randomUUID();
	const upstream: any = await ctx.call(action, { ...params, requestId });
	const served: ServedBy | undefined = ctx.meta.aiServed;
	const sse = typeof format === "function" ? format(served) : format;
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
		"X-Request-Id": requestId,
		...servedHeaders(served),
		...headers
	});
	res.flushHeaders?.();
	if (sse.start) res.write(sse.start());
	try {
		for await (const line of ndjson(upstream)) {
			if (line.done) {
				res.write(sse.done(line));
				break;
			}
			if (line.error) {
				res.write(sse.error(line.error));
				break;
			}
			res.write(sse.line(line));
		}
	} catch {
		if (!res.destroyed) res.write(sse.error({ message: "stream interrupted", type: "api_error", code: null }));
	} finally {
		ended = true;
		res.end();
	}
}
