// Embedded mode as a new user gets it: `npm start` with nothing configured serves the platform from one process,
// with PGlite under DATA_DIR; nothing else needs to run, and the data survives a restart.
import fs from "fs";
import os from "os";
import path from "path";
import { startNode } from "../helpers/process";
import { freePort } from "../helpers/ports";
import { ROOT } from "../helpers/broker";
import { build } from "../../scripts/build-server";
import OpenAI from "openai";
import { FakeOpenAI } from "../helpers/fake-openai";
import { inFlightAtStop } from "../helpers/ai";

let PORT = 0;
const api = (p: string, init?: RequestInit) =>
	fetch(`http://127.0.0.1:${PORT}${p}`, init).then(async r => ({ status: r.status, body: await r.json() }));

describe("embedded mode (npm start)", () => {
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-embedded-"));
	// Point every infrastructure URL at closed ports: embedded mode must use none of them.
	const env = {
		DATA_DIR: dataDir,
		PORT: "",
		JWT_SECRET: "",
		TRANSPORTER: "",
		CACHER: "",
		DATABASE_URL: "",
		CHANNELS_URL: "",
		REDIS_URL: ""
	};

	beforeAll(async () => {
		PORT = await freePort();
		env.PORT = String(PORT);
	});
	afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

	test("serves health with no PostgreSQL, RabbitMQ or Redis, and keeps data across a restart", async () => {
		let node = startNode(env);
		try {
			await node.ready;
			expect(node.output()).toMatch(/up \(embedded/);
			expect((await api("/api/health")).status).toBe(200);
			const ready = await api("/api/health/ready");
			expect(ready.status).toBe(200);
			expect(ready.body.checks.database.ok).toBe(true);
			expect(ready.body.checks.transporter).toBeUndefined();
			const reg = await api("/api/auth/register", {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ email: "embedded@example.com", password: "correct horse battery", name: "Em" })
			});
			expect(reg.status).toBe(200);
			// A generated JWT secret is kept in the data dir, so tokens survive the restart too.
			expect(fs.existsSync(path.join(dataDir, "jwt-secret"))).toBe(true);
			expect(await node.stop("SIGTERM")).toBe(0);

			node = startNode(env);
			await node.ready;
			const login = await api("/api/auth/login", {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ email: "embedded@example.com", password: "correct horse battery" })
			});
			expect(login.status).toBe(200);
			const me = await api("/api/auth/me", { headers: { authorization: `Bearer ${reg.body.accessToken}` } });
			expect(me.status).toBe(200);
			expect(me.body.user.email).toBe("embedded@example.com");
		} finally {
			await node.stop("SIGKILL");
		}
	}, 90_000);

	// One process: the AI service, the log writer and the database stop in the same broker.stop() as the gateway. The
	// data dir is the first test's, so the node starts without creating its database.
	test("SIGTERM with completions in flight: they finish, streamed and plain, their log rows are kept, exit 0", async () => {
		const up = new FakeOpenAI();
		const upstream = await up.start();
		// The fake upstream is on loopback, which AI providers may reach only when the operator allows it.
		let node = startNode({ ...env, AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" });
		try {
			await node.ready;
			const post = async (p: string, token: string, org: string, body: unknown) => {
				const headers = {
					authorization: `Bearer ${token}`,
					"x-organization-id": org,
					"content-type": "application/json"
				};
				const r = await api(p, { method: "POST", headers, body: JSON.stringify(body) });
				if (r.status !== 200) throw new Error(`${p}: ${r.status} ${JSON.stringify(r.body)}`);
				return r.body;
			};
			const reg = await api("/api/auth/register", {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ email: "drain@example.com", password: "correct horse battery", name: "Dr" })
			});
			const [t, o] = [reg.body.accessToken, reg.body.organization.id];
			await post("/api/secrets", t, o, { environment: "production", name: "UP_KEY", value: "sk-up-drain-1" });
			const provider = await post("/api/ai/providers", t, o, {
				name: "up",
				base_url: upstream,
				api_key_secret: "UP_KEY"
			});
			for (const [name, model] of [
				["chat", "up-chat"],
				["slow", "up-slow"]
			])
				await post("/api/ai/deployments", t, o, { provider_id: provider.id, name, provider_model: model });
			const { key } = await post("/api/auth/api-keys", t, o, { name: "drain" });
			const client = new OpenAI({ apiKey: key, baseURL: `http://127.0.0.1:${PORT}/v1`, maxRetries: 0 });
			up.set("up-chat", { chunkDelayMs: 250 });
			up.set("up-slow", { delayMs: 2000 });

			const words = "one two three four five six seven eight";
			const { stopped, text, plain } = await inFlightAtStop(
				client,
				up,
				{ stream: { model: "chat", content: words }, plain: { model: "slow", content: "plain" } },
				() => node.stop("SIGTERM")
			);
			expect(await text).toBe(`echo(up-chat): ${words}`);
			expect((await plain).choices[0].message.content).toBe("echo(up-slow): plain");
			expect(await stopped).toBe(0);

			// Both calls were logged before the database closed: the restarted node lists them.
			node = startNode({ ...env, AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" });
			await node.ready;
			const logs = await api("/api/ai/logs?limit=10", {
				headers: { authorization: `Bearer ${t}`, "x-organization-id": o }
			});
			expect(logs.status).toBe(200);
			expect(logs.body.rows.map((r: any) => `${r.requested_model} ${r.status}`).sort()).toEqual([
				"chat success",
				"slow success"
			]);
		} finally {
			await node.stop("SIGKILL");
			await up.stop();
		}
	}, 120_000);

	// `npm start` and the image run the server compiled into dist/ with plain node: its modules (*.module.js,
	// *.service.js, the module routes), PGlite's .mjs workers, the migrations and the UI are found as from the
	// sources. Plain node cannot load a .ts file, so one required by the compiled code would stop it.
	test("compiled (npm start, the image): the same platform runs with plain node, without tsx", async () => {
		fs.mkdirSync(path.join(ROOT, "test-artifacts"), { recursive: true });
		const out = fs.mkdtempSync(path.join(ROOT, "test-artifacts", "dist-"));
		const compiledData = fs.mkdtempSync(path.join(os.tmpdir(), "cide-embedded-compiled-"));
		let node: ReturnType<typeof startNode> | undefined;
		try {
			build(out);
			expect(fs.existsSync(path.join(out, "lib", "db", "pglite-worker.mjs"))).toBe(true);
			node = startNode(
				{ ...env, DATA_DIR: compiledData },
				{ script: path.join(out, "lib", "main.js"), waitUp: false }
			);
			// A first start (initdb, every migration) takes a minute or more on a busy machine.
			await node.waitFor(/Coder IDE node .* up/, 150_000);
			expect(node.output()).toMatch(/up \(embedded; services: .*gateway/);
			expect((await api("/api/health")).status).toBe(200);
			const reg = await api("/api/auth/register", {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ email: "compiled@example.com", password: "correct horse battery", name: "Co" })
			});
			expect(reg.status).toBe(200);
			const me = await api("/api/auth/me", { headers: { authorization: `Bearer ${reg.body.accessToken}` } });
			expect(me.body.user?.email).toBe("compiled@example.com");
			// A module route (ai.routes.js), mounted by the gateway: it answers, and asks for credentials.
			expect((await api("/v1/models")).status).toBe(401);
		} finally {
			await node?.stop("SIGKILL");
			fs.rmSync(out, { recursive: true, force: true });
			fs.rmSync(compiledData, { recursive: true, force: true });
		}
	}, 240_000);
});
