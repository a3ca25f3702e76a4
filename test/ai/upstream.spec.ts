// How an upstream's failure becomes the platform's: which failures the router falls back on, what the client is
// told, and that no key the call sent survives into a message. Pure logic: no infrastructure.
import OpenAI from "openai";
import { classify, UpstreamFailure } from "../../services/ai/upstream";

const KEY = "sk-live-0123456789abcdef";
const json = new Headers({ "content-type": "application/json; charset=utf-8" });
const apiError = (status: number, body: unknown, headers = json) =>
	OpenAI.APIError.generate(status, body as object, undefined, headers);

describe("upstream error classification", () => {
	test.each([
		[429, "rate_limit", true],
		[500, "server_error", true],
		[503, "server_error", true],
		[408, "timeout", true],
		[400, "client_error", false],
		[401, "client_error", false],
		[404, "client_error", false]
	])("HTTP %i in OpenAI's shape is %s (worth another deployment: %s)", (status, kind, retryable) => {
		const f = classify(apiError(status, { error: { message: "nope", type: "x" } }));
		expect(f).toBeInstanceOf(UpstreamFailure);
		expect([f.kind, f.retryable, f.status]).toEqual([kind, retryable, status]);
	});

	test("a refusal keeps the upstream's own words, without the key it echoed", () => {
		const said = `Incorrect API key provided: ${KEY}. You can find your key at https://example.com.`;
		const f = classify(apiError(401, { error: { message: said } }), undefined, [KEY]);
		expect(f.message).toContain("upstream refused the request (401): Incorrect API key provided");
		expect(f.message).not.toContain(KEY);
		expect(f.message).not.toContain("0123456789abcdef");
	});

	test("a long upstream message is cut short", () => {
		const f = classify(apiError(400, { error: { message: "x".repeat(5000) } }));
		expect(f.message.length).toBeLessThan(400);
	});

	test("an HTML page with a 4xx is not the provider refusing: a bad response (retryable), naming only its media type", () => {
		const html = new Headers({ "content-type": "text/html; charset=<script>" });
		const f = classify(apiError(404, "<html>Not Found</html>", html));
		expect([f.kind, f.retryable]).toEqual(["bad_response", true]);
		expect(f.message).toContain("content type text/html");
		expect(f.message).not.toContain("script");
		expect(f.message).not.toContain("Not Found");
	});

	test("a redirect is not followed: a bad response", () => {
		const f = classify(apiError(302, undefined, new Headers({ location: "http://169.254.169.254/" })));
		expect(f.kind).toBe("bad_response");
		expect(f.message).toContain("redirect (302)");
		expect(f.message).not.toContain("169.254");
	});

	test("network failures: timeout, unreachable (with the system's code), and a host the egress policy refuses", () => {
		expect(classify(new OpenAI.APIConnectionTimeoutError()).kind).toBe("timeout");
		const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
		const f = classify(new OpenAI.APIConnectionError({ cause: refused }));
		expect([f.kind, f.message]).toEqual(["connection", "cannot reach the upstream (ECONNREFUSED)"]);
		const egress = Object.assign(new Error("host 10.0.0.5 is private"), { code: "EGRESS_REFUSED" });
		const h = classify(new OpenAI.APIConnectionError({ cause: egress }));
		expect([h.kind, h.message]).toEqual(["host_refused", "provider host 10.0.0.5 is private"]);
	});

	test("a client that went away is a cancellation, never retried; a deadline the router set keeps its own reason", () => {
		const gone = new AbortController();
		gone.abort();
		const f = classify(new Error("aborted"), gone.signal);
		expect([f.kind, f.retryable]).toEqual(["cancelled", false]);
		const late = new AbortController();
		late.abort(new UpstreamFailure("first_token_timeout", "no first token within 300 ms"));
		expect(classify(new Error("aborted"), late.signal).kind).toBe("first_token_timeout");
	});

	test("inside a stream: an error event is a server error; a line that is not JSON is a bad response; a cut is a connection failure", () => {
		const event = new OpenAI.APIError(undefined, { message: `overloaded, key ${KEY}` }, undefined, undefined);
		const e = classify(event, undefined, [KEY]);
		expect(e.kind).toBe("server_error");
		expect(e.message).toContain("overloaded");
		expect(e.message).not.toContain(KEY);
		expect(classify(new SyntaxError("Unexpected token < in JSON")).kind).toBe("bad_response");
		const cut = classify(new Error(`terminated while sending ${KEY}`), undefined, [KEY]);
		expect(cut.kind).toBe("connection");
		expect(cut.message).not.toContain(KEY);
	});
});
