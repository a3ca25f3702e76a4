// CORS for clients on another origin (CORS_ORIGINS): a browser IDE or web extension calling /api and the module
// routes (/v1) with the OpenAI SDK, whose own headers a preflight must allow, and reading the headers that say which
// model answered or when to retry. Origins not on the list get no CORS headers.
import { describeWith, createTestDatabase, uniqueNamespace } from "../helpers/infra";
import { startGateway, TestGateway } from "../helpers/gateway";

const ORIGIN = "https://ide.example.com";

describeWith(["postgres"])("CORS at the gateway", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	const send = (method: string, path: string, headers: Record<string, string>) =>
		fetch(`http://127.0.0.1:${gw.port}${path}`, { method, headers });

	beforeAll(async () => {
		db = await createTestDatabase();
		gw = await startGateway({ DATABASE_URL: db.url, NAMESPACE: uniqueNamespace("cors"), CORS_ORIGINS: ORIGIN });
	});
	afterAll(async () => {
		await gw?.stop();
		await db?.drop();
	});

	test("a preflight for /v1 allows the SDK's own headers, whatever they are", async () => {
		const asked = "authorization, content-type, x-stainless-os, x-stainless-retry-count, anthropic-version";
		const r = await send("OPTIONS", "/v1/chat/completions", {
			origin: ORIGIN,
			"access-control-request-method": "POST",
			"access-control-request-headers": asked
		});
		expect(r.status).toBeLessThan(300);
		expect(r.headers.get("access-control-allow-origin")).toBe(ORIGIN);
		expect(r.headers.get("access-control-allow-headers")).toBe(asked);
		expect(r.headers.get("access-control-allow-methods")).toContain("POST");
	});

	test("/v1 answers let the client read which model served it; /api answers Retry-After and file names", async () => {
		const v1 = await send("GET", "/v1/models", { origin: ORIGIN });
		const exposedV1 = (v1.headers.get("access-control-expose-headers") ?? "").toLowerCase().split(/,\s*/);
		expect(exposedV1).toEqual(
			expect.arrayContaining(["x-coder-served-model", "x-coder-fallback-path", "retry-after"])
		);
		const api = await send("GET", "/api/auth/me", { origin: ORIGIN });
		expect(api.status).toBe(401);
		expect(api.headers.get("access-control-allow-origin")).toBe(ORIGIN);
		const exposedApi = (api.headers.get("access-control-expose-headers") ?? "").toLowerCase().split(/,\s*/);
		expect(exposedApi).toEqual(expect.arrayContaining(["retry-after", "content-disposition"]));
	});

	test("another origin gets no CORS headers", async () => {
		const r = await send("OPTIONS", "/api/auth/login", {
			origin: "https://evil.example.com",
			"access-control-request-method": "POST",
			"access-control-request-headers": "content-type"
		});
		expect(r.headers.get("access-control-allow-origin")).toBeNull();
	});
});
