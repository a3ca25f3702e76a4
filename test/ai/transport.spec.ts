// The HTTP transport under the openai SDK (services/ai/transport.ts), against raw servers on 127.0.0.1: answers and
// errors reach the SDK unchanged, a kept-alive connection the server dropped is retried once on a fresh one, an
// abort ends the request and a body still being read, connections go only where the host policy allows (checked
// on the address connected to), and redirects are not followed.
import http from "http";
import net from "net";
import type { AddressInfo } from "net";
import zlib from "zlib";
import OpenAI from "openai";
import { createNodeFetch } from "../../services/ai/transport";
import { HostPolicy, parseHostRules, EgressRefused } from "../../lib/egress";
import { waitUntil } from "../helpers/wait";
import { CHAT_COMPLETION as COMPLETION } from "../helpers/fake-openai";

// These servers listen on loopback, which the platform's default policy refuses: allowed here as an operator would.
const nodeFetch = createNodeFetch(new HostPolicy(parseHostRules("127.0.0.1")));
const client = (port: number) =>
	new OpenAI({ apiKey: "sk-test", baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0, fetch: nodeFetch });
// Counts the connections a server ever accepted.
const counted = (server: net.Server) => {
	const seen = { connections: 0 };
	server.on("connection", () => seen.connections++);
	return seen;
};
const listen = async (server: net.Server) => {
	await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
	return (server.address() as AddressInfo).port;
};
const request = "hello";

describe("AI upstream transport", () => {
	it("hands the SDK the status, headers and body, and the SDK's errors keep the upstream's status", async () => {
		const seen: any[] = [];
		const server = http.createServer((req, res) => {
			let body = "";
			req.on("data", c => (body += c));
			req.on("end", () => {
				seen.push({ headers: req.headers, body: JSON.parse(body) });
				if (JSON.parse(body).model === "missing") {
					res.writeHead(404, { "content-type": "application/json", "x-request-id": "req-404" });
					return res.end(
						JSON.stringify({ error: { message: "no such model", type: "invalid_request_error" } })
					);
				}
				res.writeHead(200, { "content-type": "application/json", "x-request-id": "req-1" });
				res.end(JSON.stringify(COMPLETION));
			});
		});
		const port = await listen(server);
		try {
			const { data, response } = await client(port)
				.chat.completions.create({ model: "m", messages: [{ role: "user", content: request }] })
				.withResponse();
			expect(data.choices[0].message.content).toBe("hi");
			expect(response.headers.get("x-request-id")).toBe("req-1");
			expect(seen[0].headers.authorization).toBe("Bearer sk-test");
			expect(seen[0].body.messages[0].content).toBe(request);
			const err: any = await client(port)
				.chat.completions.create({ model: "missing", messages: [{ role: "user", content: request }] })
				.catch(e => e);
			expect(err).toBeInstanceOf(OpenAI.NotFoundError);
			expect(err.message).toContain("no such model");
			expect(err.requestID).toBe("req-404");
		} finally {
			server.close();
		}
	});

	it("a compressed answer is unpacked, as fetch would", async () => {
		const server = http.createServer((_req, res) => {
			res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
			res.end(zlib.gzipSync(JSON.stringify(COMPLETION)));
		});
		const port = await listen(server);
		try {
			expect(
				(
					await client(port).chat.completions.create({
						model: "m",
						messages: [{ role: "user", content: request }]
					})
				).choices[0].message.content
			).toBe("hi");
		} finally {
			server.close();
		}
	});

	it("retries once on a fresh connection when the server dropped the kept-alive one", async () => {
		// Answers the first request of every connection and resets the connection on the second.
		let connections = 0;
		const server = net.createServer(socket => {
			connections++;
			let requests = 0;
			socket.on("data", () => {
				if (++requests > 1) return socket.resetAndDestroy();
				const body = JSON.stringify(COMPLETION);
				socket.write(
					`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: keep-alive\r\n\r\n${body}`
				);
			});
		});
		const port = await listen(server);
		try {
			const c = client(port);
			for (let i = 0; i < 3; i++)
				expect(
					(await c.chat.completions.create({ model: "m", messages: [{ role: "user", content: request }] })).id
				).toBe("c1");
			expect(connections).toBe(3);
		} finally {
			server.close();
		}
	});

	it("an abort ends a body still being read, with the abort's reason", async () => {
		const server = http.createServer((_req, res) => {
			res.writeHead(200, { "content-type": "text/event-stream" });
			res.write(
				`data: ${JSON.stringify({ id: "s", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content: "a" } }] })}\n\n`
			);
			// …and nothing more: the stream hangs until the client gives up.
		});
		const port = await listen(server);
		try {
			const controller = new AbortController();
			const stream = await client(port).chat.completions.create(
				{ model: "m", messages: [{ role: "user", content: request }], stream: true },
				{ signal: controller.signal }
			);
			const chunks: string[] = [];
			const reading = (async () => {
				for await (const chunk of stream) chunks.push(chunk.choices[0]?.delta?.content ?? "");
			})();
			await waitUntil(
				"the first chunk",
				async () => chunks.length,
				n => n > 0,
				5000,
				5
			);
			controller.abort(new Error("client went away"));
			await expect(reading).rejects.toThrow();
			expect(chunks).toEqual(["a"]);
		} finally {
			server.closeAllConnections();
			server.close();
		}
	});

	describe("host policy", () => {
		const ask = { model: "m", messages: [{ role: "user" as const, content: request }] };
		let server: http.Server;
		let port: number;
		let seen: { connections: number };
		beforeAll(async () => {
			server = http.createServer((_req, res) => {
				res.writeHead(200, { "content-type": "application/json" });
				res.end(JSON.stringify(COMPLETION));
			});
			seen = counted(server);
			port = await listen(server);
		});
		afterAll(() => server.close());

		it("by default refuses loopback, by address in any spelling and by a name resolving to it, before connecting", async () => {
			const fetch = createNodeFetch(new HostPolicy([], { variable: "AI_ALLOWED_PRIVATE_HOSTS" }));
			for (const host of ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433", "[::1]"]) {
				const sdk = new OpenAI({
					apiKey: "sk-test",
					baseURL: `http://${host}:${port}/v1`,
					maxRetries: 0,
					fetch
				});
				const err: any = await sdk.chat.completions.create(ask).catch(e => e);
				expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
				expect(err.cause).toBeInstanceOf(EgressRefused);
				expect(err.cause.message).toMatch(
					/is a loopback address, which the platform does not connect to \(an operator can allow it in AI_ALLOWED_PRIVATE_HOSTS\)/
				);
			}
			expect(seen.connections).toBe(0);
			// Allowed by the operator: the same request goes through.
			expect((await client(port).chat.completions.create(ask)).id).toBe("c1");
			expect(seen.connections).toBe(1);
		});

		it("checks the address the socket connects to: a name that re-resolves to loopback (DNS rebinding) is refused", async () => {
			const answers = ["93.184.216.34", "127.0.0.1"];
			const resolved: string[] = [];
			const lookup = (
				host: string,
				_o: unknown,
				cb: (e: null, a: { address: string; family: number }[]) => void
			) => {
				const address = answers[Math.min(resolved.length, answers.length - 1)];
				resolved.push(`${host}=${address}`);
				cb(null, [{ address, family: 4 }]);
			};
			const policy = new HostPolicy([], { lookup });
			const url = new URL(`http://rebind.example:${port}/v1`);
			// The first answer (public) passes the check made when the provider is saved…
			expect(await policy.checkUrl(url)).toBeUndefined();
			// …the answer the connection gets (loopback) does not.
			const sdk = new OpenAI({
				apiKey: "sk-test",
				baseURL: url.href,
				maxRetries: 0,
				fetch: createNodeFetch(policy)
			});
			const err: any = await sdk.chat.completions.create(ask).catch(e => e);
			expect(err.cause).toBeInstanceOf(EgressRefused);
			expect(err.cause.message).toContain("rebind.example (127.0.0.1) is a loopback address");
			expect(resolved).toEqual([`rebind.example=93.184.216.34`, `rebind.example=127.0.0.1`]);
			const before = seen.connections;
			// A name allowed to resolve to loopback connects to exactly what the policy's lookup answered.
			const allowed = new HostPolicy(parseHostRules(`127.0.0.1:${port}`), { lookup });
			const ok = new OpenAI({
				apiKey: "sk-test",
				baseURL: url.href,
				maxRetries: 0,
				fetch: createNodeFetch(allowed)
			});
			expect((await ok.chat.completions.create(ask)).id).toBe("c1");
			expect(seen.connections).toBe(before + 1);
		});

		it("does not follow a redirect: the SDK gets the 3xx as the answer", async () => {
			const redirecting = http.createServer((_req, res) => {
				res.writeHead(302, { location: `http://127.0.0.1:${port}/v1/chat/completions` });
				res.end();
			});
			const redirectPort = await listen(redirecting);
			try {
				const before = seen.connections;
				const err: any = await client(redirectPort)
					.chat.completions.create(ask)
					.catch(e => e);
				expect(err).toBeInstanceOf(OpenAI.APIError);
				expect(err.status).toBe(302);
				expect(seen.connections).toBe(before);
			} finally {
				redirecting.close();
			}
		});
	});
});
