// The fetch for hosts that tenants name (MCP servers over HTTP, webhook steps of plans): node:http(s) whose
// connections go only to addresses the operator's host policy allows (lib/egress.ts), checked after DNS on every
// connection, so a name that resolves (or re-resolves) to an internal address is refused. No redirect is followed.
// The answer is a real WHATWG Response (the transports read SSE streams from its body).
import http from "http";
import https from "https";
import { Readable } from "stream";
import type { HostPolicy } from "./egress";

const agents = {
	"http:": new http.Agent({ keepAlive: true, maxSockets: 256 }),
	"https:": new https.Agent({ keepAlive: true, maxSockets: 256 })
};

function headersOf(init: HeadersInit | undefined): Record<string, string> {
	const out: Record<string, string> = {};
	new Headers(init).forEach((v, k) => (out[k] = v));
	return out;
}

async function bodyOf(body: BodyInit | null | undefined): Promise<Buffer | undefined> {
	if (body == null) return undefined;
	if (typeof body === "string") return Buffer.from(body);
	return Buffer.from(await new Response(body).arrayBuffer());
}

export function egressFetch(policy: HostPolicy): typeof fetch {
	return (async (input: string | URL | Request, init: RequestInit = {}) => {
		const url = new URL(input instanceof Request ? input.url : String(input));
		if (url.protocol !== "http:" && url.protocol !== "https:")
			throw new TypeError(`unsupported protocol ${url.protocol}`);
		const refused = await policy.checkUrl(url);
		if (refused) throw refused;
		const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
		const body = await bodyOf(init.body);
		const signal = init.signal ?? undefined;
		signal?.throwIfAborted();
		const mod = url.protocol === "https:" ? https : http;
		return new Promise<Response>((resolve, reject) => {
			const req = mod.request(
				url,
				{
					method: init.method ?? "GET",
					headers: { ...headersOf(init.headers), ...(body ? { "content-length": body.length } : {}) },
					agent: agents[url.protocol as "http:" | "https:"],
					lookup: policy.lookupFor(port),
					signal
				},
				res => {
					const headers = new Headers();
					const raw = res.rawHeaders;
					for (let i = 0; i < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
					const status = res.statusCode ?? 0;
					const empty = status === 204 || status === 304 || init.method === "HEAD";
					const stream = empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
					if (empty) res.resume();
					resolve(new Response(stream, { status, statusText: res.statusMessage, headers }));
				}
			);
			req.once("error", reject);
			req.end(body);
		});
	}) as typeof fetch;
}
