// How a chat completion reaches its provider. An OpenAI-compatible provider gets a plain HTTP POST on the AI
// service's transport, without the SDK's per-request machinery (its options, header merging, retry loop and Stream
// wrapper): a bare proxy spent 1.32 ms of CPU per request through the SDK, 0.83 without (bench/README.md). Its
// failures still take the SDK's error classes, so classify() in upstream.ts reads both paths alike. An Anthropic
// provider's chat goes through the SDK and the Messages translator (anthropic-upstream.ts).
import OpenAI from "openai";
import type { Readable } from "stream";
import { sseEvents } from "./sse";

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface ChatUpstream {
	// The raw answer of a whole completion (read and checked by readChatCompletion).
	complete(body: Record<string, unknown>, signal: AbortSignal): Promise<Response>;
	// A streamed completion: the answer (its headers checked by checkStreamResponse) and its chunks, parsed.
	stream(
		body: Record<string, unknown>,
		signal: AbortSignal
	): Promise<{ response: Response; chunks: AsyncIterator<any> }>;
}

export function sdkChat(client: OpenAI): ChatUpstream {
	return {
		complete: (body, signal) =>
			client.chat.completions.create({ ...body, stream: false } as any, { signal }).asResponse(),
		async stream(body, signal) {
			const { data, response } = await client.chat.completions
				.create({ ...body, stream: true } as any, { signal })
				.withResponse();
			return { response, chunks: (data as unknown as AsyncIterable<any>)[Symbol.asyncIterator]() };
		}
	};
}

// The SDK's URL for a path under a base URL, and the headers it would send that a provider may depend on: the
// key as a bearer token ("none" without one, as the SDK sends), then the provider's own headers, which win.
export function directChat(
	fetch: Fetch,
	baseUrl: string,
	credentials: { apiKey: string; headers: Record<string, string> }
): ChatUpstream {
	const url = baseUrl + (baseUrl.endsWith("/") ? "chat/completions" : "/chat/completions");
	const headers: Record<string, string> = {
		accept: "application/json",
		"content-type": "application/json",
		"user-agent": "coder-ide",
		authorization: `Bearer ${credentials.apiKey || "none"}`
	};
	for (const [name, value] of Object.entries(credentials.headers)) headers[name.toLowerCase()] = value;

	async function post(body: Record<string, unknown>, signal: AbortSignal): Promise<Response> {
		const payload = JSON.stringify(body);
		let response: Response;
		try {
			response = await fetch(url, {
				method: "POST",
				headers: { ...headers, "content-length": String(Buffer.byteLength(payload)) },
				body: payload,
				signal
			});
		} catch (err) {
			// An aborted attempt is told by its signal (classify reads the reason); anything else never reached an
			// answer, as the SDK reports it.
			if (signal.aborted) throw err;
			throw new OpenAI.APIConnectionError({ cause: err as Error });
		}
		if (response.ok) return response;
		// As the SDK does: the body as JSON when it is (OpenAI's error shape), else its text as the message.
		const text = await response.text().catch((err: Error) => err.message);
		let json: object | undefined;
		try {
			json = JSON.parse(text);
		} catch {
			json = undefined;
		}
		throw OpenAI.APIError.generate(response.status, json, json ? undefined : text, response.headers);
	}

	return {
		complete: (body, signal) => post({ ...body, stream: false }, signal),
		async stream(body, signal) {
			const response = await post({ ...body, stream: true }, signal);
			return { response, chunks: chunksOf(response)[Symbol.asyncIterator]() };
		}
	};
}

// An OpenAI stream's chunks, as the SDK's Stream yields them: each data line parsed (a line that is not JSON throws
// the parser's SyntaxError), an error object raised as the upstream's error, and nothing after [DONE] (the rest of
// the body is still read, so the connection can be kept).
async function* chunksOf(response: Response): AsyncGenerator<any> {
	let done = false;
	for await (const sse of sseEvents(response.body as unknown as Readable)) {
		if (done) continue;
		if (sse.data.startsWith("[DONE]")) {
			done = true;
			continue;
		}
		const data = JSON.parse(sse.data);
		if (data?.error) throw new OpenAI.APIError(undefined, data.error, undefined, response.headers);
		yield data;
	}
}
