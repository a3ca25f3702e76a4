// The HTTP transport under the openai SDK. The SDK builds requests and parses answers; the global fetch it would
// use by default wraps every body in WHATWG streams, which on a small machine costs about as much time as the
// upstream round trip itself. This fetch goes through node:http(s) with keep-alive agents and hands the SDK the
// parts of a Response it reads (status, headers, json/text, and the body as a Node stream: the SDK reads any async
// iterable body). Every connection goes through the operator's host policy (lib/egress.ts), and no redirect is
// followed: a 3xx reaches the SDK as the answer it is.
import http from "http";
import https from "https";
import net from "net";
import zlib from "zlib";
import type { Readable } from "stream";
import type { HostPolicy } from "../../lib/egress";

const agents = {
	"http:": new http.Agent({ keepAlive: true, maxSockets: 1024, scheduling: "lifo" }),
	"https:": new https.Agent({ keepAlive: true, maxSockets: 1024, scheduling: "lifo" })
};

class NodeResponse {
	readonly ok: boolean;
	readonly status: number;
	readonly statusText: string;
	readonly headers: Headers;
	bodyUsed = false;

	constructor(
		readonly url: string,
		private message: http.IncomingMessage
	) {
		this.status = message.statusCode ?? 0;
		this.statusText = message.statusMessage ?? "";
		this.ok = this.status >= 200 && this.status < 300;
		const headers = new Headers();
		const raw = message.rawHeaders;
		for (let i = 0; i < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
		this.headers = headers;
	}

	// No Accept-Encoding is sent, so an answer is normally plain; one compressed anyway is unpacked as fetch would.
	private decoded?: Readable;
	get body(): Readable {
		if (this.decoded) return this.decoded;
		const encoding = this.headers.get("content-encoding")?.trim().toLowerCase();
		const unpack =
			encoding === "gzip" || encoding === "x-gzip"
				? zlib.createGunzip()
				: encoding === "deflate"
					? zlib.createInflate()
					: encoding === "br"
						? zlib.createBrotliDecompress()
						: undefined;
		if (!unpack) return (this.decoded = this.message);
		this.message.on("error", err => unpack.destroy(err));
		return (this.decoded = this.message.pipe(unpack));
	}

	async text(): Promise<string> {
		return (await this.buffer()).toString("utf8");
	}

	async json(): Promise<unknown> {
		return JSON.parse(await this.text());
	}

	private async buffer(): Promise<Buffer> {
		if (this.bodyUsed) throw new TypeError("body already read");
		this.bodyUsed = true;
		// Events rather than async iteration: one promise for the whole body instead of one per chunk.
		const body = this.body;
		return new Promise((resolve, reject) => {
			const chunks: Buffer[] = [];
			body.on("data", (chunk: Buffer) => chunks.push(chunk));
			body.once("end", () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
			body.once("error", reject);
		});
	}
}

function plainHeaders(init: HeadersInit | undefined): Record<string, string> {
	const out: Record<string, string> = {};
	if (!init) return out;
	if (init instanceof Headers) init.forEach((v, k) => (out[k] = v));
	else if (Array.isArray(init)) for (const [k, v] of init) out[k.toLowerCase()] = v;
	else for (const [k, v] of Object.entries(init)) if (v !== undefined) out[k.toLowerCase()] = v;
	return out;
}

// The parts of fetch the SDK uses: method, headers, a string or byte body, and an abort signal that ends the
// request (and a body still being read) with the signal's reason. Connections are made only to addresses `policy`
// allows: an IP literal is checked here (a socket to it skips DNS), a name in the socket's own lookup, so the
// address checked is the address connected to.
export function createNodeFetch(policy: HostPolicy) {
	return function nodeFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
		const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
		const agent = agents[url.protocol as keyof typeof agents];
		if (!agent) return Promise.reject(new TypeError(`unsupported protocol ${url.protocol}`));
		const body = init.body as string | Uint8Array | null | undefined;
		if (body != null && typeof body !== "string" && !(body instanceof Uint8Array))
			return Promise.reject(new TypeError("nodeFetch sends string or byte bodies only"));
		const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
		const literal = url.hostname.replace(/^\[(.*)\]$/, "$1");
		const refused = net.isIP(literal) ? policy.check(literal, port, literal) : undefined;
		if (refused) return Promise.reject(refused);
		const signal = init.signal ?? undefined;
		const options = {
			method: init.method ?? "GET",
			headers: plainHeaders(init.headers),
			agent,
			lookup: policy.lookupFor(port)
		};
		return new Promise((resolve, reject) => {
			const send = (retry: boolean) => {
				if (signal?.aborted) return reject(signal.reason);
				const request = (url.protocol === "https:" ? https : http).request(url, options, message =>
					resolve(new NodeResponse(url.href, message) as unknown as Response)
				);
				const onAbort = () =>
					request.destroy(
						signal!.reason instanceof Error
							? signal!.reason
							: Object.assign(new Error("aborted"), { name: "AbortError" })
					);
				signal?.addEventListener("abort", onAbort, { once: true });
				request.once("close", () => signal?.removeEventListener("abort", onAbort));
				request.once("error", err => {
					// A kept-alive connection the server closed while it was idle fails at once, before any answer:
					// the request never reached the server, so it goes again on a fresh connection.
					if (retry && request.reusedSocket && (err as any).code === "ECONNRESET" && !signal?.aborted)
						return send(false);
					reject(err);
				});
				request.end(body ?? undefined);
			};
			send(true);
		});
	};
}
