// The HTTP transport under the openai SDK (services/ai/transport.ts), against raw servers on 127.0.0.1: answers and
// errors reach the SDK unchanged, a kept-alive connection the server dropped is retried once on a fresh one, and an
// abort ends the request and a body still being read.
import http from "http";
import net from "net";
import type { AddressInfo } from "net";
import zlib from "zlib";
import OpenAI from "openai";
import { nodeFetch } from "../../services/ai/transport";

const COMPLETION = { id: "c1", object: "chat.completion", created: 1, model: "m", choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }] };
const client = (port: number) => new OpenAI({ apiKey: "sk-test", baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0, fetch: nodeFetch });
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
					return res.end(JSON.stringify({ error: { message: "no such model", type: "invalid_request_error" } }));
				}
				res.writeHead(200, { "content-type": "application/json", "x-request-id": "req-1" });
				res.end(JSON.stringify(COMPLETION));
			});
		});
		const port = await listen(server);
		try {
			const { data, response } = await client(port).chat.completions.create({ model: "m", messages: [{ role: "user", content: request }] }).withResponse();
			expect(data.choices[0].message.content).toBe("hi");
			expect(response.headers.get("x-request-id")).toBe("req-1");
			expect(seen[0].headers.authorization).toBe("Bearer sk-test");
			expect(seen[0].body.messages[0].content).toBe(request);
			const err: any = await client(port).chat.completions.create({ model: "missing", messages: [{ role: "user", content: request }] }).catch(e => e);
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
			expect((await client(port).chat.completions.create({ model: "m", messages: [{ role: "user", content: request }] })).choices[0].message.content).toBe("hi");
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
				socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: keep-alive\r\n\r\n${body}`);
			});
		});
		const port = await listen(server);
		try {
			const c = client(port);
			for (let i = 0; i < 3; i++) expect((await c.chat.completions.create({ model: "m", messages: [{ role: "user", content: request }] })).id).toBe("c1");
			expect(connections).toBe(3);
		} finally {
			server.close();
		}
	});

	it("an abort ends a body still being read, with the abort's reason", async () => {
		const server = http.createServer((_req, res) => {
			res.writeHead(200, { "content-type": "text/event-stream" });
			res.write(`data: ${JSON.stringify({ id: "s", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content: "a" } }] })}\n\n`);
			// …and nothing more: the stream hangs until the client gives up.
		});
		const port = await listen(server);
		try {
			const controller = new AbortController();
			const stream = await client(port).chat.completions.create({ model: "m", messages: [{ role: "user", content: request }], stream: true }, { signal: controller.signal });
			const chunks: string[] = [];
			const reading = (async () => {
				for await (const chunk of stream) chunks.push(chunk.choices[0]?.delta?.content ?? "");
			})();
			await new Promise(r => setTimeout(r, 50));
			controller.abort(new Error("client went away"));
			await expect(reading).rejects.toThrow();
			expect(chunks).toEqual(["a"]);
		} finally {
			server.closeAllConnections();
			server.close();
		}
	});
});
