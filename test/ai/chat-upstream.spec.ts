// Chat completions sent to an OpenAI-compatible provider without the SDK (services/ai/chat-upstream.ts), against a
// raw server on 127.0.0.1: what it sends (URL, key, the provider's headers), a stream's chunks however the bytes
// are cut, and failures in the SDK's error classes, so that classify() reads them as it reads the SDK's.
import http from "http";
import type { AddressInfo } from "net";
import { directChat } from "../../services/ai/chat-upstream";
import { createNodeFetch } from "../../services/ai/transport";
import { classify } from "../../services/ai/upstream";
import { HostPolicy, parseHostRules } from "../../lib/egress";
import { CHAT_COMPLETION as COMPLETION } from "../helpers/fake-openai";

const nodeFetch = createNodeFetch(new HostPolicy(parseHostRules("127.0.0.1")));
const KEY = "sk-direct-0123456789";
const chunk = (content: string, finish: string | null = null) => ({
	id: "c1",
	object: "chat.completion.chunk",
	choices: [{ index: 0, delta: { content }, finish_reason: finish }]
});

type Handler = (req: http.IncomingMessage, body: any, res: http.ServerResponse) => void;

describe("chat completions sent directly", () => {
	let server: http.Server;
	let base: string;
	let handler: Handler;
	const seen: { url?: string; headers: http.IncomingHttpHeaders; body: any }[] = [];

	beforeAll(async () => {
		server = http.createServer((req, res) => {
			let text = "";
			req.on("data", c => (text += c));
			req.on("end", () => {
				const body = JSON.parse(text);
				seen.push({ url: req.url, headers: req.headers, body });
				handler(req, body, res);
			});
		});
		await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
		base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
	});
	afterAll(() => new Promise(r => server.close(r)));
	beforeEach(() => (seen.length = 0));

	const chat = (headers: Record<string, string> = {}) => directChat(nodeFetch, base, { apiKey: KEY, headers });
	const signal = () => new AbortController().signal;

	test("posts to the base URL's chat/completions with the key, and the provider's headers win", async () => {
		handler = (_req, _body, res) => {
			res.writeHead(200, { "content-type": "application/json" });
			res.end(JSON.stringify(COMPLETION));
		};
		const response = await chat({ "X-Goog-Api-Key": "g-1", Authorization: "Token custom" }).complete(
			{ model: "m", messages: [{ role: "user", content: "hi" }] },
			signal()
		);
		expect(await response.json()).toEqual(COMPLETION);
		expect(seen[0].url).toBe("/v1/chat/completions");
		expect(seen[0].body).toEqual({ model: "m", messages: [{ role: "user", content: "hi" }], stream: false });
		expect(seen[0].headers).toMatchObject({
			"x-goog-api-key": "g-1",
			authorization: "Token custom",
			"content-type": "application/json"
		});
		await chat().complete({ model: "m", messages: [] }, signal());
		expect(seen[1].headers.authorization).toBe(`Bearer ${KEY}`);
	});

	test("a refusal is the SDK's error: the upstream's status and words, without the key it echoed", async () => {
		handler = (_req, _body, res) => {
			res.writeHead(401, { "content-type": "application/json" });
			res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${KEY}`, type: "auth" } }));
		};
		const err = await chat()
			.complete({ model: "m", messages: [] }, signal())
			.catch(e => e);
		const f = classify(err, undefined, [KEY]);
		expect([f.kind, f.status]).toEqual(["client_error", 401]);
		expect(f.message).toBe("upstream refused the request (401): Incorrect API key provided: [redacted]");

		handler = (_req, _body, res) => {
			res.writeHead(503, { "content-type": "text/html" });
			res.end("<html>down</html>");
		};
		const down = classify(
			await chat()
				.complete({ model: "m", messages: [] }, signal())
				.catch(e => e)
		);
		expect([down.kind, down.status]).toEqual(["server_error", 503]);
	});

	test("a stream's chunks, its bytes cut anywhere (inside a character too), nothing after [DONE]", async () => {
		const events =
			[chunk("héllo "), chunk("wörld", "stop")].map(c => `data: ${JSON.stringify(c)}\n\n`).join("") +
			"data: [DONE]\n\n" +
			`data: ${JSON.stringify(chunk("after"))}\n\n`;
		const bytes = Buffer.from(events);
		handler = (_req, _body, res) => {
			res.writeHead(200, { "content-type": "text/event-stream" });
			// One byte at a time: "é" and "ö" are two bytes each, so they arrive split.
			let i = 0;
			const next = () => (i < bytes.length ? res.write(bytes.subarray(i, ++i), () => next()) : res.end());
			next();
		};
		const { response, chunks } = await chat().stream({ model: "m", messages: [] }, signal());
		expect(response.headers.get("content-type")).toBe("text/event-stream");
		expect(seen[0].body.stream).toBe(true);
		const got: any[] = [];
		for (let step = await chunks.next(); !step.done; step = await chunks.next()) got.push(step.value);
		expect(got.map(c => c.choices[0].delta.content)).toEqual(["héllo ", "wörld"]);
	});

	test("an error inside a stream and a line that is not JSON are told apart", async () => {
		const drain = async (events: string) => {
			handler = (_req, _body, res) => {
				res.writeHead(200, { "content-type": "text/event-stream" });
				res.end(events);
			};
			const { chunks } = await chat().stream({ model: "m", messages: [] }, signal());
			for (let step = await chunks.next(); !step.done; step = await chunks.next());
		};
		const overloaded = await drain(
			`data: ${JSON.stringify(chunk("a"))}\n\ndata: ${JSON.stringify({ error: { message: "Overloaded" } })}\n\n`
		).catch(e => e);
		expect(classify(overloaded).message).toBe("upstream error: Overloaded");
		const garbled = await drain("data: {not json\n\n").catch(e => e);
		expect(classify(garbled).message).toBe(
			"the upstream's answer is not an OpenAI-compatible stream (a line is not JSON)"
		);
	});

	test("an upstream that is not there is a connection failure; an aborted attempt is told by its signal", async () => {
		const closed = http.createServer();
		await new Promise<void>(r => closed.listen(0, "127.0.0.1", r));
		const port = (closed.address() as AddressInfo).port;
		await new Promise(r => closed.close(r));
		const gone = directChat(nodeFetch, `http://127.0.0.1:${port}/v1`, { apiKey: KEY, headers: {} });
		const err = await gone.complete({ model: "m", messages: [] }, signal()).catch(e => e);
		expect(classify(err).message).toBe("cannot reach the upstream (ECONNREFUSED)");

		handler = () => undefined; // never answers
		const control = new AbortController();
		const pending = chat().complete({ model: "m", messages: [] }, control.signal);
		control.abort(new Error("deadline"));
		const aborted = await pending.catch(e => e);
		expect(classify(aborted, control.signal).kind).toBe("cancelled");
	});
});
