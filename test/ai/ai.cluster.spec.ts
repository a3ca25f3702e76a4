// The platform as an OpenAI-compatible endpoint: the official openai SDK as the client, the gateway, two AI
// replicas and the secrets service in separate processes over RabbitMQ, Redis shared, a fake upstream on 127.0.0.1.
import crypto from "crypto";
import OpenAI from "openai";
import pg from "pg";
import { io, Socket } from "socket.io-client";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL, REDIS_URL } from "../helpers/infra";
import { deleteRabbitObjects } from "../helpers/rabbit";
import { startNode, TEST_JWT_SECRET } from "../helpers/process";
import { FakeOpenAI } from "../helpers/fake-openai";
import { inFlightAtStop } from "../helpers/ai";
import { freePorts } from "../helpers/ports";

let BASE = "";
// A second gateway whose request timeout (1 s) is shorter than the slow upstream's answer.
let SHORT = "";
const TRANSIT_KEY = "ai-cluster-transit-key-0123456789abcdef";
const RPM = 10;

async function api(method: string, path: string, token: string, org: string, body?: unknown) {
	const r = await fetch(`${BASE}${path}`, {
		method,
		headers: {
			authorization: `Bearer ${token}`,
			"x-organization-id": org,
			...(body ? { "content-type": "application/json" } : {})
		},
		body: body ? JSON.stringify(body) : undefined
	});
	const json = await r.json();
	if (r.status >= 400) throw new Error(`${method} ${path} -> ${r.status} ${JSON.stringify(json)}`);
	return json;
}

describeWith(["postgres", "rabbitmq", "redis"])("OpenAI-compatible API over the cluster", () => {
	const namespace = uniqueNamespace("ai");
	const up = new FakeOpenAI();
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let nodes: ReturnType<typeof startNode>[] = [];
	let client: OpenAI;
	let owner: any;
	let apiKey: string;
	// What every node of the cluster gets, for a gateway a test starts of its own.
	let env: Record<string, string>;

	beforeAll(async () => {
		const [PORT, SHORT_PORT] = await freePorts(2);
		[BASE, SHORT] = [`http://127.0.0.1:${PORT}`, `http://127.0.0.1:${SHORT_PORT}`];
		const upstream = await up.start();
		db = await createTestDatabase();
		env = {
			TRANSPORTER: AMQP_URL,
			CACHER: REDIS_URL,
			CHANNELS_URL: AMQP_URL,
			DATABASE_URL: db.url,
			NAMESPACE: namespace,
			JWT_SECRET: TEST_JWT_SECRET,
			TRANSIT_KEY,
			AI_LOG_BATCH_MS: "0"
		};
		// The fake upstream is on loopback, which AI providers may reach only when the operator allows it.
		const aiEnv = { ...env, SERVICES: "ai", AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" };
		nodes = [
			startNode({
				...env,
				SERVICES: "auth,secrets",
				MASTER_KEY: crypto.randomBytes(32).toString("base64"),
				NODE_ID: `${namespace}-core`
			}),
			startNode({ ...aiEnv, NODE_ID: `${namespace}-ai-1` }),
			startNode({ ...aiEnv, NODE_ID: `${namespace}-ai-2` }),
			startNode({ ...env, SERVICES: "gateway", PORT: String(PORT), NODE_ID: `${namespace}-gw` }),
			startNode({
				...env,
				SERVICES: "gateway",
				PORT: String(SHORT_PORT),
				REQUEST_TIMEOUT: "1000",
				NODE_ID: `${namespace}-gw-short`
			})
		];
		await Promise.all(nodes.map(n => n.ready));
		const deadline = Date.now() + 30_000;
		while (Date.now() < deadline) {
			const ready = await fetch(`${BASE}/api/health/ready`)
				.then(r => r.json())
				.catch(() => ({ services: [] }));
			const aiNodes = await fetch(`${BASE}/api/ai/models`)
				.then(r => r.status)
				.catch(() => 0);
			if (ready.services?.includes("ai") && ready.services?.includes("secrets") && aiNodes === 401) break;
			await new Promise(r => setTimeout(r, 250));
		}
		owner = await (
			await fetch(`${BASE}/api/auth/register`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ email: "llm@example.com", password: "correct horse battery", name: "LLM" })
			})
		).json();
		const t = owner.accessToken,
			o = owner.organization.id;
		await api("POST", "/api/secrets", t, o, {
			environment: "production",
			name: "UPSTREAM_KEY",
			value: "sk-upstream-cluster-9f31"
		});
		const provider = await api("POST", "/api/ai/providers", t, o, {
			name: "fake",
			base_url: upstream,
			api_key_secret: "UPSTREAM_KEY",
			timeout_ms: 2000
		});
		await api("POST", "/api/ai/deployments", t, o, {
			provider_id: provider.id,
			name: "gpt-test",
			provider_model: "up-chat",
			input_price: 1,
			output_price: 2
		});
		await api("POST", "/api/ai/deployments", t, o, {
			provider_id: provider.id,
			name: "embed-test",
			provider_model: "up-embed",
			kind: "embedding"
		});
		// A provider slower than the short gateway's request timeout, and one at an address nobody listens on.
		const patient = { name: "patient", base_url: upstream, api_key_secret: "UPSTREAM_KEY", timeout_ms: 10_000 };
		const slow = await api("POST", "/api/ai/providers", t, o, patient);
		await api("POST", "/api/ai/deployments", t, o, {
			provider_id: slow.id,
			name: "slow-test",
			provider_model: "up-slow"
		});
		const dead = await api("POST", "/api/ai/providers", t, o, {
			name: "dead",
			base_url: "http://127.0.0.1:9/v1",
			timeout_ms: 2000
		});
		await api("POST", "/api/ai/deployments", t, o, {
			provider_id: dead.id,
			name: "dead-test",
			provider_model: "x"
		});
		apiKey = (await api("POST", "/api/auth/api-keys", t, o, { name: "ide-extension" })).key;
		client = new OpenAI({ apiKey, baseURL: `${BASE}/v1`, maxRetries: 0 });
	}, 120_000);

	afterAll(async () => {
		await Promise.all(nodes.map(n => n.stop("SIGKILL")));
		await up.stop();
		await db?.drop();
		// Its channel queues too: RabbitMQ keeps files open for every queue left behind.
		await deleteRabbitObjects([namespace]).catch(() => undefined);
	});

	test("chat completions, models and embeddings with the official SDK", async () => {
		const r = await client.chat.completions.create({
			model: "gpt-test",
			messages: [{ role: "user", content: "hi there" }]
		});
		expect(r.choices[0].message.content).toBe("echo(up-chat): hi there");
		expect(r.usage?.total_tokens).toBeGreaterThan(0);
		expect(up.requests.at(-1)!.authorization).toBe("Bearer sk-upstream-cluster-9f31");
		const models = await client.models.list();
		expect(models.data.map(m => m.id).sort()).toEqual(["dead-test", "embed-test", "gpt-test", "slow-test"]);
		const e = await client.embeddings.create({ model: "embed-test", input: ["one", "two"] });
		expect(e.data).toHaveLength(2);
		expect(e.data[0].embedding.length).toBe(8);
	});

	test("streaming with the official SDK, usage included", async () => {
		const stream = await client.chat.completions.create({
			model: "gpt-test",
			messages: [{ role: "user", content: "stream to me" }],
			stream: true,
			stream_options: { include_usage: true }
		});
		let text = "";
		let usage: any;
		for await (const chunk of stream) {
			text += chunk.choices[0]?.delta?.content ?? "";
			if (chunk.usage) usage = chunk.usage;
		}
		expect(text).toBe("echo(up-chat): stream to me");
		expect(usage.total_tokens).toBeGreaterThan(0);
	});

	test("a stream that breaks after tokens were sent is an error for the client, not a clean finish", async () => {
		up.set("up-chat", { cutAfterChunks: 2, chunkDelayMs: 30 });
		try {
			const stream = await client.chat.completions.create({
				model: "gpt-test",
				messages: [{ role: "user", content: "this one will be cut short" }],
				stream: true
			});
			let received = 0;
			await expect(
				(async () => {
					for await (const _ of stream) received++;
				})()
			).rejects.toThrow(/stream interrupted/);
			expect(received).toBeGreaterThan(0);
		} finally {
			up.reset();
		}
	});

	test("bad requests get OpenAI-style errors with the right status", async () => {
		await expect(
			client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] })
		).rejects.toMatchObject({
			status: 404,
			code: "model_not_found",
			type: "invalid_request_error"
		});
		await expect(
			client.chat.completions.create({ model: "gpt-test", messages: [{ role: "wizard", content: "x" }] as any })
		).rejects.toMatchObject({
			status: 400,
			type: "invalid_request_error"
		});
		await expect(
			client.chat.completions.create({ model: "gpt-test", messages: "hello" as any })
		).rejects.toMatchObject({ status: 400, param: "messages" });
		const anonymous = new OpenAI({ apiKey: "cide_00000000_notarealkey", baseURL: `${BASE}/v1`, maxRetries: 0 });
		await expect(
			anonymous.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "x" }] })
		).rejects.toMatchObject({ status: 401, code: "invalid_api_key" });
		const raw = await fetch(`${BASE}/v1/chat/completions`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: "{}"
		});
		expect(raw.status).toBe(401);
		expect((await raw.json()).error.type).toBe("invalid_request_error");
	});

	test("closing the client's stream aborts the upstream request", async () => {
		up.set("up-chat", { chunkDelayMs: 150, content: "a b c d e f g h i j k l m n o p" });
		try {
			const controller = new AbortController();
			const stream = await client.chat.completions.create(
				{ model: "gpt-test", messages: [{ role: "user", content: "long" }], stream: true },
				{ signal: controller.signal }
			);
			// The SDK may end the iteration or throw on abort; what matters is what the upstream saw.
			await (async () => {
				for await (const _ of stream) controller.abort();
			})().catch(() => undefined);
			const seen = () => up.requests.filter(r => r.model === "up-chat").at(-1)!;
			const deadline = Date.now() + 5000;
			while (!seen().aborted && Date.now() < deadline) await new Promise(r => setTimeout(r, 50));
			expect(seen().aborted).toBe(true);
			expect(seen().finished).toBe(false);
		} finally {
			up.reset();
		}
	});

	test("the web UI streams over the socket bridge", async () => {
		const s: Socket = await new Promise((resolve, reject) => {
			const c = io(BASE, {
				path: "/socket.io",
				auth: { token: owner.accessToken, organizationId: owner.organization.id },
				transports: ["websocket"],
				reconnection: false
			});
			c.once("ready", () => resolve(c));
			c.once("connect_error", reject);
		});
		try {
			let text = "";
			let last: any;
			const ended = new Promise<any>(resolve => s.on("stream:end", resolve));
			s.on("stream:data", ({ data }) => ((last = data), (text += data.choices?.[0]?.delta?.content ?? "")));
			const chat = { model: "gpt-test", messages: [{ role: "user", content: "over the socket" }] };
			const ack: any = await new Promise(r =>
				s.emit("stream", { id: "chat", action: "ai.stream", params: chat }, r)
			);
			expect(ack).toEqual({ data: { id: "chat" } });
			await ended;
			expect(last.usage.total_tokens).toBeGreaterThan(0);
			expect(text).toBe("echo(up-chat): over the socket");
			const nowhere = { model: "no-such-model", messages: [{ role: "user", content: "x" }] };
			const bad: any = await new Promise(r =>
				s.emit("stream", { id: "bad", action: "ai.stream", params: nowhere }, r)
			);
			expect(bad).toMatchObject({ status: 404, error: { code: "MODEL_NOT_FOUND" } });
		} finally {
			s.close();
		}
	});

	test("a completion slower than the gateway's request timeout reaches the upstream once, answered (REST, SSE, socket)", async () => {
		up.set("up-slow", { delayMs: 2500 });
		try {
			const short = new OpenAI({ apiKey, baseURL: `${SHORT}/v1`, maxRetries: 0 });
			const ask = (content: string) => ({ model: "slow-test", messages: [{ role: "user" as const, content }] });
			const rest = short.chat.completions.create(ask("slow rest"));
			const sse = (async () => {
				let text = "";
				const stream = await short.chat.completions.create({ ...ask("slow sse"), stream: true });
				for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
				return text;
			})();
			const s: Socket = await new Promise((resolve, reject) => {
				const auth = { token: owner.accessToken, organizationId: owner.organization.id };
				const c = io(SHORT, { path: "/socket.io", auth, transports: ["websocket"], reconnection: false });
				c.once("ready", () => resolve(c));
				c.once("connect_error", reject);
			});
			try {
				let text = "";
				s.on("stream:data", ({ data }) => (text += data.choices?.[0]?.delta?.content ?? ""));
				const done = new Promise<any>(
					(resolve, reject) => (s.once("stream:end", resolve), s.once("stream:error", reject))
				);
				const ack: any = await new Promise(r =>
					s.emit("stream", { id: "slow", action: "ai.stream", params: ask("slow socket") }, r)
				);
				expect(ack).toEqual({ data: { id: "slow" } });
				await done;
				expect(text).toBe("echo(up-slow): slow socket");
			} finally {
				s.close();
			}
			expect((await rest).choices[0].message.content).toBe("echo(up-slow): slow rest");
			expect(await sse).toBe("echo(up-slow): slow sse");
			const sent = (content: string) => up.requests.filter(r => r.body.messages?.[0]?.content === content).length;
			expect(["slow rest", "slow sse", "slow socket"].map(sent)).toEqual([1, 1, 1]);
			// One success row each, whenever the AI replicas have written them.
			const deadline = Date.now() + 10_000;
			let rows: any[] = [];
			while (Date.now() < deadline) {
				rows = (
					await api("GET", "/api/ai/logs?model=slow-test&limit=100", owner.accessToken, owner.organization.id)
				).rows;
				if (rows.length >= 3) break;
				await new Promise(r => setTimeout(r, 100));
			}
			expect(rows.map(r => r.status)).toEqual(["success", "success", "success"]);
		} finally {
			up.reset();
		}
	});

	test("an upstream echoing the key: the key reaches no /v1 error, stream, logs API, event or node output", async () => {
		const t = owner.accessToken,
			o = owner.organization.id;
		const key = "AIzaClusterEchoKey9d02e7";
		await api("POST", "/api/secrets", t, o, { environment: "production", name: "ECHO_KEY", value: key });
		const provider = await api("POST", "/api/ai/providers", t, o, {
			name: "echoing",
			base_url: up.baseUrl,
			api_key_secret: "ECHO_KEY",
			timeout_ms: 2000
		});
		await api("POST", "/api/ai/deployments", t, o, {
			provider_id: provider.id,
			name: "echo-test",
			provider_model: "up-echo"
		});
		up.set("up-echo", { echoCredentials: true });
		try {
			const ask = { model: "echo-test", messages: [{ role: "user" as const, content: "hi" }] };
			const err: any = await client.chat.completions.create(ask).catch(e => e);
			expect(up.requests.at(-1)!.authorization).toBe(`Bearer ${key}`);
			expect(err.status).toBe(400);
			expect(err.message).toContain("Incorrect API key provided: authorization=Bearer [redacted]");
			const streamed: any = await client.chat.completions.create({ ...ask, stream: true }).catch(e => e);
			expect(streamed.status).toBe(400);
			const logs = await api("GET", "/api/ai/logs?limit=500", t, o);
			expect(logs.rows.some((r: any) => r.requested_model === "echo-test" && r.status === "error")).toBe(true);
			const sql = new pg.Client({ connectionString: db.url });
			await sql.connect();
			const stored = await sql
				.query("SELECT payload FROM outbox UNION ALL SELECT to_jsonb(l) FROM ai_completion_logs l")
				.finally(() => sql.end());
			expect(stored.rows.some(r => JSON.stringify(r).includes("echo-test"))).toBe(true);
			const everything =
				JSON.stringify([err.message, err.error, streamed.message, streamed.error, logs, stored.rows]) +
				nodes.map(n => n.output()).join("\n");
			expect(everything).not.toContain(key);
		} finally {
			up.reset();
		}
	});

	test("a provider that keeps failing leaves the AI endpoints open for everything else (breaker over the transporter)", async () => {
		// Enough failures for both replicas' endpoints to pass the breaker's minimum of 20 requests, all failing.
		// The breaker that matters is the calling gateway's: every call here goes through the same one.
		const viaShort = new OpenAI({ apiKey, baseURL: `${SHORT}/v1`, maxRetries: 0 });
		const statuses: number[] = [];
		for (let i = 0; i < 45; i++) {
			const failing = viaShort.chat.completions.create({
				model: "dead-test",
				messages: [{ role: "user", content: `${i}` }]
			});
			statuses.push(
				await failing.then(
					() => 200,
					(e: any) => e.status
				)
			);
		}
		const r = await viaShort.chat.completions.create({
			model: "gpt-test",
			messages: [{ role: "user", content: "still open" }]
		});
		expect(r.choices[0].message.content).toBe("echo(up-chat): still open");
		expect(new Set(statuses)).toEqual(new Set([502]));
	});

	test("a gateway stopped (SIGTERM) closes its port, finishes the completions in flight, streamed and plain, and exits 0", async () => {
		const [port] = await freePorts(1);
		const base = `http://127.0.0.1:${port}`;
		const gw = startNode({ ...env, SERVICES: "gateway", PORT: String(port), NODE_ID: `${namespace}-gw-drain` });
		nodes.push(gw);
		await gw.ready;
		const drained = new OpenAI({ apiKey, baseURL: `${base}/v1`, maxRetries: 0 });
		const deadline = Date.now() + 30_000;
		while (
			!(await drained.models.list().then(
				m => m.data.length > 0,
				() => false
			))
		) {
			if (Date.now() > deadline) throw new Error("the new gateway never served /v1/models");
			await new Promise(r => setTimeout(r, 250));
		}
		up.set("up-chat", { chunkDelayMs: 500 });
		up.set("up-slow", { delayMs: 1000 });
		try {
			const words = "one two three four five six seven eight";
			const { stopped, text, plain } = await inFlightAtStop(
				drained,
				up,
				{
					stream: { model: "gpt-test", content: words },
					plain: { model: "slow-test", content: "plain in flight" }
				},
				() => gw.stop("SIGTERM")
			);
			// Meanwhile the port closes at once: a load balancer's next connection goes to another replica.
			let streaming = true;
			const done = () => (streaming = false);
			void text.then(done, done);
			const portClosed = (async () => {
				while (
					streaming &&
					(await fetch(`${base}/api/health`).then(
						() => true,
						() => false
					))
				)
					await new Promise(r => setTimeout(r, 50));
				return streaming;
			})();
			expect(await text).toBe(`echo(up-chat): ${words}`);
			expect(await portClosed).toBe(true);
			expect((await plain).choices[0].message.content).toBe("echo(up-slow): plain in flight");
			expect(await stopped).toBe(0);
			expect(gw.output()).toContain("SIGTERM received");
		} finally {
			up.reset();
		}
	}, 60_000);

	test("an AI replica stopped (SIGTERM) lets the streams it serves finish and logs them, then exits 0", async () => {
		const ai3 = startNode({
			...env,
			SERVICES: "ai",
			AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
			NODE_ID: `${namespace}-ai-3`
		});
		nodes.push(ai3);
		await ai3.ready;
		// The gateway knows the third replica once it has sent a completion there (round robin over three).
		up.set("up-chat", { chunkDelayMs: 250 });
		const since = new Date().toISOString();
		try {
			const words = "alpha beta gamma delta epsilon zeta eta theta";
			const streams = await Promise.all(
				Array.from({ length: 6 }, (_, i) =>
					client.chat.completions.create({
						model: "gpt-test",
						messages: [{ role: "user", content: `drain ${i} ${words}` }],
						stream: true
					})
				)
			);
			const read = streams.map(async stream => {
				let text = "";
				for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
				return text;
			});
			const exited = ai3.stop("SIGTERM");
			expect(await Promise.all(read)).toEqual(streams.map((_, i) => `echo(up-chat): drain ${i} ${words}`));
			expect(await exited).toBe(0);
			// It had some of them: the stop waited for them instead of cutting them.
			expect(ai3.output()).toMatch(/Letting [1-6] requests in flight finish/);
			const deadline = Date.now() + 10_000;
			let rows: any[] = [];
			while (Date.now() < deadline) {
				const query = `from=${encodeURIComponent(since)}&model=gpt-test&limit=100`;
				rows = (await api("GET", `/api/ai/logs?${query}`, owner.accessToken, owner.organization.id)).rows;
				if (rows.length >= 6) break;
				await new Promise(r => setTimeout(r, 100));
			}
			expect(rows.map(r => r.status)).toEqual(Array(6).fill("success"));
		} finally {
			up.reset();
		}
	}, 60_000);

	test("rate limits: with two AI replicas exactly the configured number per window succeed, the rest get 429", async () => {
		await api("POST", "/api/ai/rate-limits", owner.accessToken, owner.organization.id, {
			scope: "organization",
			requests_per_minute: RPM
		});
		// Both replicas drop their cached set-up on the change event (a broadcast): give it a moment to arrive.
		await new Promise(r => setTimeout(r, 300));
		const results = await Promise.allSettled(
			Array.from({ length: RPM + 6 }, (_, i) =>
				client.chat.completions.create({
					model: "gpt-test",
					messages: [{ role: "user", content: `burst ${i}` }]
				})
			)
		);
		const ok = results.filter(r => r.status === "fulfilled").length;
		const limited = results.filter(r => r.status === "rejected" && (r.reason as any).status === 429);
		expect(ok).toBe(RPM);
		expect(limited).toHaveLength(6);
		expect((limited[0] as any).reason.headers.get("retry-after")).toMatch(/^\d+$/);
		const logs = await api("GET", "/api/ai/logs?limit=100", owner.accessToken, owner.organization.id);
		expect(logs.rows.filter((r: any) => r.status === "rate_limited")).toHaveLength(6);
	});
});
