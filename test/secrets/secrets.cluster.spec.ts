// Secrets across processes over RabbitMQ, as the AI service will use them: a provider key stored through the
// gateway, resolved by a service in another process, rotated without a restart; resolve unreachable from outside;
// and no secret value in any log, Redis entry, event or error response.
import crypto from "crypto";
import Redis from "ioredis";
import { ServiceBroker } from "moleculer";
import { io, Socket } from "socket.io-client";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL, REDIS_URL } from "../helpers/infra";
import { startNode, TEST_JWT_SECRET } from "../helpers/process";
import { freePort } from "../helpers/ports";
import { deriveCredential, IDENTITY_META, signCall } from "../../lib/service-identity";
import { loadConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";

let PORT = 0;
const TRANSIT_KEY = "secrets-cluster-transit-key-0123456789";
const MASTER_KEY = crypto.randomBytes(32).toString("base64");
// The operator's root is on the secrets node only; the consumer's node holds its own credential, nothing more.
const IDENTITY_ROOT = crypto.randomBytes(32).toString("base64url");
const CONSUMER_CREDENTIAL = deriveCredential(IDENTITY_ROOT, "provider-consumer");
const KEY_V1 = "sk-live-FIRST-provider-key-6c1f0b";
const KEY_V2 = "sk-live-SECOND-provider-key-93de4a";
const KEY_V3 = "sk-live-THIRD-provider-key-0a77f2";
const VALUES = [KEY_V1, KEY_V2, KEY_V3];
const sha = (v: string) => crypto.createHash("sha256").update(v).digest("hex");

async function http(method: string, path: string, token?: string, org?: string, body?: unknown) {
	const headers: Record<string, string> = {};
	if (token) headers.authorization = `Bearer ${token}`;
	if (org) headers["x-organization-id"] = org;
	if (body !== undefined) headers["content-type"] = "application/json";
	const sendBody = body !== undefined && method !== "GET";
	if (!sendBody) delete headers["content-type"];
	const r = await fetch(`http://127.0.0.1:${PORT}${path}`, {
		method,
		headers,
		body: sendBody ? JSON.stringify(body) : undefined
	});
	return { status: r.status, text: await r.text() };
}

describeWith(["postgres", "rabbitmq", "redis"])("secrets across processes", () => {
	const namespace = uniqueNamespace("sec");
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let nodes: ReturnType<typeof startNode>[] = [];
	let caller: ServiceBroker;
	const events: { name: string; payload: string }[] = [];
	const responses: string[] = [];
	let owner: any, secretId: string;

	// Every node is given TRANSIT_KEY and no identity: each gets what it needs below.
	const env = () => ({
		TRANSPORTER: AMQP_URL,
		CACHER: REDIS_URL,
		DATABASE_URL: db.url,
		NAMESPACE: namespace,
		JWT_SECRET: TEST_JWT_SECRET,
		TRANSIT_KEY,
		SERVICE_IDENTITY_KEY: ""
	});
	const call = async (method: string, path: string, body?: unknown) => {
		const r = await http(method, path, owner?.accessToken, owner?.organization.id, body);
		responses.push(r.text);
		return { status: r.status, body: JSON.parse(r.text) };
	};

	beforeAll(async () => {
		PORT = await freePort();
		db = await createTestDatabase();
		nodes = [
			startNode({
				...env(),
				SERVICES: "auth,secrets",
				MASTER_KEY,
				SERVICE_IDENTITY_KEY: IDENTITY_ROOT,
				NODE_ID: `${namespace}-secrets`
			}),
			startNode({ ...env(), SERVICES: "gateway", PORT: String(PORT), NODE_ID: `${namespace}-gw` }),
			startNode({
				...env(),
				SERVICES_DIR: "test/fixtures/services",
				SERVICES: "provider-consumer",
				SERVICE_CREDENTIALS: `provider-consumer:${CONSUMER_CREDENTIAL}`,
				NODE_ID: `${namespace}-consumer`
			})
		];
		await Promise.all(nodes.map(n => n.ready));
		// The test's own node: it knows TRANSIT_KEY (it is a node) and holds no service's credential.
		caller = new ServiceBroker({
			...brokerOptions(loadConfig({ ...env(), SERVICES: "" })),
			nodeID: `${namespace}-caller`,
			logger: false
		});
		// Every broadcast event of the cluster, recorded for the leak scan.
		caller.createService({
			name: "event-recorder",
			events: {
				"**"(ctx: any) {
					events.push({ name: ctx.eventName, payload: JSON.stringify(ctx.params ?? null) });
				}
			}
		});
		await caller.start();
		await caller.waitForServices(["auth", "secrets", "gateway", "provider-consumer"], 30_000);
		// The recorder hears broadcasts only once the secrets node has learned of it (INFO travels both ways).
		const known = Date.now() + 20_000;
		for (;;) {
			const services: any[] = await caller.call(
				"$node.services",
				{ onlyAvailable: true },
				{ nodeID: `${namespace}-secrets` }
			);
			if (services.some(s => s.name === "event-recorder") || Date.now() > known) break;
			await new Promise(r => setTimeout(r, 100));
		}
		const deadline = Date.now() + 20_000;
		while ((await http("GET", "/api/secrets")).status === 404 && Date.now() < deadline)
			await new Promise(r => setTimeout(r, 200));
		const reg = await http("POST", "/api/auth/register", undefined, undefined, {
			email: "ops@example.com",
			password: "correct horse battery",
			name: "Ops"
		});
		owner = JSON.parse(reg.text);
	}, 90_000);

	afterAll(async () => {
		await caller?.stop();
		await Promise.all(nodes.map(n => n.stop("SIGKILL")));
		await db?.drop();
	});

	test("a provider key stored through the gateway is resolved by a service in another process, and rotation takes effect without a restart", async () => {
		const created = await call("POST", "/api/secrets", {
			environment: "production",
			name: "OPENAI_API_KEY",
			value: KEY_V1
		});
		expect(created.status).toBe(200);
		secretId = created.body.id;
		const org = owner.organization.id;

		// Without a grant the service is refused, and the refusal is audited.
		await expect(caller.call("provider-consumer.keyFingerprint", { organizationId: org })).rejects.toMatchObject({
			code: 403
		});
		expect(
			(
				await call("POST", "/api/secrets/grants", {
					secretId,
					permission: "read",
					granteeType: "service",
					granteeId: "provider-consumer"
				})
			).status
		).toBe(200);
		expect(await caller.call("provider-consumer.keyFingerprint", { organizationId: org })).toBe(sha(KEY_V1));

		// A new version: the consumer's in-process cache drops the entry on the change event.
		expect((await call("PATCH", `/api/secrets/${secretId}`, { value: KEY_V2 })).status).toBe(200);
		const deadline = Date.now() + 5000;
		let seen = "";
		while (seen !== sha(KEY_V2) && Date.now() < deadline)
			seen = await caller.call("provider-consumer.keyFingerprint", { organizationId: org });
		expect(seen).toBe(sha(KEY_V2));

		// A data-key rotation keeps it readable; another new version is picked up too.
		expect((await call("POST", "/api/secrets/rotate-data-key")).status).toBe(200);
		expect((await call("PATCH", `/api/secrets/${secretId}`, { value: KEY_V3 })).status).toBe(200);
		const deadline3 = Date.now() + 5000;
		while (seen !== sha(KEY_V3) && Date.now() < deadline3)
			seen = await caller.call("provider-consumer.keyFingerprint", { organizationId: org });
		expect(seen).toBe(sha(KEY_V3));

		const audit = await call("GET", "/api/secrets/audit?limit=100");
		const kinds = audit.body.map((e: any) => `${e.action}:${e.outcome}:${e.actor_type}`);
		expect(kinds).toEqual(
			expect.arrayContaining([
				"resolve:denied:service",
				"resolve:success:service",
				"rotate-data-key:success:user"
			])
		);
	});

	test("a node holding only TRANSIT_KEY cannot resolve as a service; the service's own node can, until its grant is revoked", async () => {
		const org = owner.organization.id;
		const name = "DEPLOY_TOKEN";
		const created = await call("POST", "/api/secrets", { environment: "production", name, value: KEY_V1 });
		expect(created.status).toBe(200);
		const grant = await call("POST", "/api/secrets/grants", {
			secretId: created.body.id,
			permission: "read",
			granteeType: "service",
			granteeId: "provider-consumer"
		});
		expect(grant.status).toBe(200);
		expect(await caller.call("provider-consumer.keyFingerprint", { organizationId: org, name })).toBe(sha(KEY_V1));

		const ref = { organizationId: org, environment: "production", name };
		const now = Date.now();
		const forgeries: [string, Record<string, unknown>][] = [
			["the caller's name", { caller: "provider-consumer" }],
			[
				"a token of the right shape",
				{ meta: { [IDENTITY_META]: `provider-consumer.${now}.bm9uY2U.${"A".repeat(43)}` } }
			],
			// A credential made from what every node knows is not the service's credential.
			[
				"a token from TRANSIT_KEY",
				{
					meta: {
						[IDENTITY_META]: signCall(
							"provider-consumer",
							deriveCredential(TRANSIT_KEY, "provider-consumer"),
							"secrets.resolve",
							org
						)
					}
				}
			],
			// A real token for another secret does not read this one.
			[
				"a token for another secret",
				{
					meta: {
						[IDENTITY_META]: signCall(
							"provider-consumer",
							CONSUMER_CREDENTIAL,
							"secrets.resolve",
							org,
							"|production|OPENAI_API_KEY"
						)
					}
				}
			]
		];
		for (const [label, opts] of forgeries) {
			const outcome = await caller.call("secrets.resolve", ref, opts).then(
				(r: any) => `resolved (${r.value === KEY_V1 ? "the value" : "something"})`,
				(e: any) => e.code
			);
			expect([label, outcome]).toEqual([label, 403]);
		}
		const audit = await call("GET", "/api/secrets/audit?limit=100");
		const refused = audit.body.filter(
			(e: any) => e.action === "resolve" && e.target === `production/${name}` && e.outcome === "denied"
		);
		expect(refused.length).toBe(forgeries.length);

		// Revoked in the gateway's process, the consumer's process is refused from then on (its cached value dropped).
		expect((await call("DELETE", `/api/secrets/grants/${grant.body.id}`)).status).toBe(200);
		const deadline = Date.now() + 10_000;
		let last: unknown;
		while (Date.now() < deadline) {
			last = await caller
				.call("provider-consumer.keyFingerprint", { organizationId: org, name })
				.catch((e: any) => e.code);
			if (last === 403) break;
		}
		expect(last).toBe(403);
	});

	test("secrets.resolve is unreachable through the gateway and the socket", async () => {
		for (const [method, path] of [
			["POST", "/api/secrets/resolve"],
			["GET", "/api/secrets/resolve"],
			["POST", "/api/secrets.resolve"],
			["POST", "/api/secrets/rotateMasterKey"]
		]) {
			const r = await call(method, path, {
				organizationId: owner.organization.id,
				environment: "production",
				name: "OPENAI_API_KEY"
			});
			expect([method, path, r.status]).toEqual([method, path, 404]);
		}
		const s: Socket = await new Promise((resolve, reject) => {
			const c = io(`http://127.0.0.1:${PORT}`, {
				path: "/socket.io",
				auth: { token: owner.accessToken, organizationId: owner.organization.id },
				transports: ["websocket"],
				reconnection: false
			});
			c.once("ready", () => resolve(c));
			c.once("connect_error", reject);
		});
		const reply: any = await new Promise(r =>
			s.emit(
				"call",
				{
					action: "secrets.resolve",
					params: { organizationId: owner.organization.id, environment: "production", name: "OPENAI_API_KEY" }
				},
				r
			)
		);
		responses.push(JSON.stringify(reply));
		expect(reply.error.code).toBe("NOT_FOUND");
		// Reveal is the person's way, and works over the socket like REST.
		const revealed: any = await new Promise(r =>
			s.emit("call", { action: "secrets.reveal", params: { id: secretId } }, r)
		);
		expect(revealed.data.value).toBe(KEY_V3);
		s.close();
	});

	test("no secret value in any log line, Redis key or value, event payload or error response", async () => {
		// Provoke errors that mention the secret, to see that they do not echo the value.
		responses.push(
			(
				await http("POST", "/api/secrets", owner.accessToken, owner.organization.id, {
					environment: "production",
					name: "OPENAI_API_KEY",
					value: KEY_V1
				})
			).text
		);
		responses.push(
			(
				await http("POST", "/api/secrets", owner.accessToken, owner.organization.id, {
					environment: "nowhere",
					name: "X",
					value: KEY_V1
				})
			).text
		);
		responses.push(
			(
				await http("PATCH", `/api/secrets/${secretId}`, owner.accessToken, owner.organization.id, {
					value: KEY_V2,
					cas: 1
				})
			).text
		);
		expect(responses.filter(r => r.includes('"error"')).length).toBeGreaterThanOrEqual(3);

		const redis = new Redis(REDIS_URL);
		const dump: string[] = [];
		try {
			for (const key of await redis.keys("*")) {
				dump.push(key);
				const type = await redis.type(key);
				if (type === "string") dump.push((await redis.get(key)) ?? "");
				else if (type === "hash") dump.push(JSON.stringify(await redis.hgetall(key)));
				else if (type === "list") dump.push(JSON.stringify(await redis.lrange(key, 0, -1)));
			}
		} finally {
			redis.disconnect();
		}
		expect(dump.some(d => d.startsWith(namespace))).toBe(true);
		// Three new values, a grant and a rotation were announced; none of them carried a value.
		expect(events.filter(e => e.name === "secrets.changed").length).toBeGreaterThanOrEqual(5);

		const logs = nodes.map(n => n.output()).join("\n");
		expect(logs).toContain("secrets"); // the logs were captured
		for (const value of VALUES) {
			expect(logs.includes(value)).toBe(false);
			expect(dump.some(d => d.includes(value))).toBe(false);
			expect(events.some(e => e.payload.includes(value))).toBe(false);
			expect(responses.filter(r => r.includes('"error"')).some(r => r.includes(value))).toBe(false);
		}
	});
});
