// The completion log as a client reads it, over a real gateway and PostgreSQL: one entry with its stored request
// and answer (only when the organization keeps content), filters by API key and status, statistics per hour and
// model computed in SQL, a streamed CSV export with the same filters; another organization reaches none of it.
import { describeWith, createTestDatabase, uniqueNamespace, REDIS_URL } from "../helpers/infra";
import { startGateway, http, register, TestGateway, Member } from "../helpers/gateway";
import { FakeOpenAI } from "../helpers/fake-openai";
import { waitUntil } from "../helpers/wait";

const FILES = [
	"services/secrets/secrets.service.ts",
	"services/ai/ai.service.ts",
	"services/ai/providers.service.ts",
	"services/ai/deployments.service.ts",
	"services/ai/limits.service.ts"
];

describeWith(["postgres", "redis"])("completion log: detail, filters, stats, CSV; rate limit usage", () => {
	const up = new FakeOpenAI();
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	let a: Member, b: Member;
	let keyA: { id: string; key: string }, keyB: { id: string; key: string };
	const asA = () => ({ token: a.accessToken, org: a.organization.id });
	const asB = () => ({ token: b.accessToken, org: b.organization.id });
	const chat = (key: string, model: string, content: string) =>
		http(gw.port, "POST", "/v1/chat/completions", {
			token: key,
			body: { model, messages: [{ role: "user", content }] }
		});

	beforeAll(async () => {
		const upstream = await up.start();
		db = await createTestDatabase();
		gw = await startGateway(
			{
				DATABASE_URL: db.url,
				NAMESPACE: uniqueNamespace("logs"),
				// The rate limit counters live in Redis, as in a cluster.
				REDIS_URL,
				AI_LOG_BATCH_MS: "0",
				AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1"
			},
			FILES
		);
		a = await register(gw.port, "logs-a@example.com");
		b = await register(gw.port, "logs-b@example.com");
		const provider = await http(gw.port, "POST", "/api/ai/providers", {
			...asA(),
			body: { name: "Fake", base_url: upstream }
		});
		expect(provider.status).toBe(200);
		for (const name of ["fast", "broken", "cut", "tool"])
			expect(
				(
					await http(gw.port, "POST", "/api/ai/deployments", {
						...asA(),
						body: { provider_id: provider.body.id, name, provider_model: name, input_price: 1 }
					})
				).status
			).toBe(200);
		up.set("broken", { status: 500 });
		up.set("fast", { content: "the answer is 42" });
		up.set("tool", { toolCall: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' } });
		up.set("cut", { content: "alpha beta gamma delta", cutAfterChunks: 2, chunkDelayMs: 50 });
		keyA = (await http(gw.port, "POST", "/api/auth/api-keys", { ...asA(), body: { name: "laptop" } })).body;
		keyB = (await http(gw.port, "POST", "/api/auth/api-keys", { ...asA(), body: { name: "ci" } })).body;
	}, 60_000);

	afterAll(async () => {
		await gw?.stop();
		await up.stop();
		await db?.drop();
	});

	test("an entry shows its request and answer only when the organization keeps content", async () => {
		expect((await chat(keyA.key, "fast", "not kept")).status).toBe(200);
		const settings = await http(gw.port, "PATCH", "/api/ai/settings", { ...asA(), body: { storeContent: true } });
		expect(settings.status).toBe(200);
		expect((await chat(keyA.key, "fast", "what is six times seven")).status).toBe(200);
		const list = await waitUntil(
			"two log rows",
			() => http(gw.port, "GET", "/api/ai/logs", asA()),
			r => r.body.rows?.length === 2
		);
		const [kept, notKept] = list.body.rows;
		expect(kept).toMatchObject({ api_key_name: "laptop", provider_name: "Fake" });

		const detail = await http(gw.port, "GET", `/api/ai/logs/${kept.id}`, asA());
		expect(detail.status).toBe(200);
		expect(detail.body).toMatchObject({
			content_stored: true,
			api_key_name: "laptop",
			user_email: "logs-a@example.com",
			status: "success",
			fallback_path: ["fast@Fake:ok"]
		});
		expect(detail.body.request_body.messages).toEqual([{ role: "user", content: "what is six times seven" }]);
		expect(JSON.stringify(detail.body.response_body)).toContain("the answer is 42");
		expect(typeof detail.body.cost).toBe("number");

		const bare = await http(gw.port, "GET", `/api/ai/logs/${notKept.id}`, asA());
		expect(bare.body).toMatchObject({ content_stored: false, request_body: null, response_body: null });

		// A viewer of A's organization sees that the words were kept, not the words: they are the author's.
		const viewer = await register(gw.port, "logs-viewer@example.com");
		const added = await http(gw.port, "POST", `/api/auth/organizations/${a.organization.id}/members`, {
			...asA(),
			body: { email: "logs-viewer@example.com", role: "viewer" }
		});
		expect(added.status).toBe(200);
		const seen = await http(gw.port, "GET", `/api/ai/logs/${kept.id}`, {
			token: viewer.accessToken,
			org: a.organization.id
		});
		expect(seen.status).toBe(200);
		expect(seen.body).toMatchObject({ content_stored: true, content_hidden: true, request_body: null });
		expect(seen.body.response_body).toBeNull();
		expect(detail.body.content_hidden).toBe(false);

		// Another organization: not found, whether by id or with A's organization header.
		expect((await http(gw.port, "GET", `/api/ai/logs/${kept.id}`, asB())).status).toBe(404);
		const cross = await http(gw.port, "GET", `/api/ai/logs/${kept.id}`, { ...asB(), org: a.organization.id });
		expect(cross.status).toBe(403);
		expect((await http(gw.port, "GET", "/api/ai/logs/not-an-id", asA())).status).toBe(404);
	});

	test("a stream cut short keeps what arrived as its answer", async () => {
		const r = await http(gw.port, "POST", "/v1/chat/completions", {
			token: keyA.key,
			body: { model: "cut", stream: true, messages: [{ role: "user", content: "count" }] }
		});
		expect(r.text).toContain("alpha");
		const row = await waitUntil(
			"the cut stream's row",
			() => http(gw.port, "GET", "/api/ai/logs?model=cut", asA()),
			x => x.body.rows?.length === 1
		);
		const detail = await http(gw.port, "GET", `/api/ai/logs/${row.body.rows[0].id}`, asA());
		expect(detail.body.status).toBe("error");
		expect(detail.body.response_body).toEqual({ content: "alpha beta " });
		expect(detail.body.request_body.messages).toEqual([{ role: "user", content: "count" }]);
	});

	test("a streamed tool call is kept whole, assembled from the pieces it arrived in", async () => {
		expect(
			(await http(gw.port, "PATCH", "/api/ai/settings", { ...asA(), body: { storeContent: true } })).status
		).toBe(200);
		const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }];
		const r = await http(gw.port, "POST", "/v1/chat/completions", {
			token: keyA.key,
			body: { model: "tool", stream: true, tools, messages: [{ role: "user", content: "weather in Paris?" }] }
		});
		expect(r.status).toBe(200);
		// The client got the arguments in several pieces (the fake cuts them every 7 characters).
		expect(r.text.match(/"arguments":"/g)!.length).toBeGreaterThan(2);
		const list = await waitUntil(
			"the tool call's log row",
			() => http(gw.port, "GET", "/api/ai/logs?model=tool", asA()),
			l => l.body.rows?.length === 1
		);
		const detail = await http(gw.port, "GET", `/api/ai/logs/${list.body.rows[0].id}`, asA());
		expect(detail.body.response_body.tool_calls).toEqual([
			{
				id: expect.any(String),
				type: "function",
				function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' }
			}
		]);
	});

	test("filters by API key and status; stats per hour and model; CSV export with the same filters", async () => {
		expect((await chat(keyB.key, "broken", "fails")).status).toBeGreaterThanOrEqual(500);
		await waitUntil(
			"the failed rows (this one and the cut stream)",
			() => http(gw.port, "GET", "/api/ai/logs?status=error", asA()),
			r => r.body.rows?.length === 2
		);
		const byKey = await http(gw.port, "GET", `/api/ai/logs?apiKeyId=${keyB.id}`, asA());
		expect(byKey.body.rows.map((r: any) => [r.api_key_name, r.status])).toEqual([["ci", "error"]]);
		expect((await http(gw.port, "GET", "/api/ai/logs?apiKeyId=nope", asA())).status).toBe(422);

		const stats = await http(gw.port, "GET", "/api/ai/logs/stats?bucket=hour", asA());
		expect(stats.status).toBe(200);
		const byModel = Object.fromEntries(stats.body.rows.map((r: any) => [r.model, r]));
		expect(byModel.fast).toMatchObject({ requests: 2, errors: 0 });
		expect(byModel.broken).toMatchObject({ requests: 1, errors: 1 });
		expect(byModel.fast.prompt_tokens).toBeGreaterThan(0);
		const far = await http(gw.port, "GET", "/api/ai/logs/stats?bucket=hour&from=2000-01-01", asA());
		expect(far.status).toBe(422);
		expect((await http(gw.port, "GET", "/api/ai/logs/stats", asB())).body.rows).toEqual([]);

		const csv = await http(gw.port, "GET", `/api/ai/logs/export?status=success&model=fast`, asA());
		expect(csv.status).toBe(200);
		expect(csv.headers.get("content-type")).toMatch(/text\/csv/);
		expect(csv.headers.get("content-disposition")).toMatch(/attachment; filename="completion-log-/);
		const lines = csv.text.trim().split("\r\n");
		expect(lines[0].split(",")).toEqual(expect.arrayContaining(["created_at", "status", "cost", "api_key_name"]));
		expect(lines).toHaveLength(3);
		expect(lines.slice(1).every(l => l.includes(",success,") && l.includes("laptop"))).toBe(true);
		// Prompts never go into the export.
		expect(csv.text).not.toContain("six times seven");
		const theirs = await http(gw.port, "GET", "/api/ai/logs/export", asB());
		expect(theirs.text.trim().split("\r\n")).toHaveLength(1);
	});

	test("rate limits show what the caller has used of each in the current minute", async () => {
		const limit = (body: object) => http(gw.port, "POST", "/api/ai/rate-limits", { ...asA(), body });
		const org = await limit({ scope: "organization", requests_per_minute: 100, tokens_per_minute: 100000 });
		const perKey = await limit({ scope: "api_key", requests_per_minute: 10 });
		const perModel = await limit({ scope: "model", model: "fast", requests_per_minute: 20 });
		for (const r of [org, perKey, perModel]) expect(r.status).toBe(200);
		for (let i = 0; i < 3; i++) expect((await chat(keyA.key, "fast", `hello ${i}`)).status).toBe(200);
		expect((await chat(keyB.key, "fast", "from the other key")).status).toBe(200);

		const asSession = await http(gw.port, "GET", "/api/ai/rate-limit-usage", asA());
		expect(asSession.status).toBe(200);
		const byId = (rows: any[]) => Object.fromEntries(rows.map(r => [r.id, r]));
		const s = byId(asSession.body);
		expect(s[org.body.id]).toMatchObject({ subject: "organization", requests_per_minute: 100, requests_used: 4 });
		expect(s[org.body.id].tokens_used).toBeGreaterThan(0);
		expect(s[perModel.body.id]).toMatchObject({ subject: "fast", requests_used: 4 });
		// A session has no API key of its own: a per-key limit has no counter to show it.
		expect(s[perKey.body.id]).toMatchObject({ subject: null, requests_used: null, requests_per_minute: 10 });

		const asKey = byId((await http(gw.port, "GET", "/api/ai/rate-limit-usage", { token: keyA.key })).body);
		expect(asKey[perKey.body.id]).toMatchObject({ subject: "this API key", requests_used: 3 });

		// Reading the usage counts nothing.
		const again = byId((await http(gw.port, "GET", "/api/ai/rate-limit-usage", asA())).body);
		expect(again[org.body.id].requests_used).toBe(4);
		expect((await http(gw.port, "GET", "/api/ai/rate-limit-usage", asB())).body).toEqual([]);
	});
});
