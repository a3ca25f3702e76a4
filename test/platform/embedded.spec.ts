// Embedded mode as a new user gets it: `npm start` with nothing configured serves the platform from one process,
// with PGlite under DATA_DIR; nothing else needs to run, and the data survives a restart.
import fs from "fs";
import os from "os";
import path from "path";
import { startNode } from "../helpers/process";
import { freePort } from "../helpers/ports";
import { ROOT } from "../helpers/broker";
import { build } from "../../scripts/build-server";

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
