// Credentials over REST, as a client sees them: what an API key may create and reach (its ceiling), when an
// access token or key stops working at the gateway, and how fast a team removal takes team-granted access away.
// Two nodes in this process over RabbitMQ, each with its own in-memory cache (a cluster without Redis): node A runs
// the gateway and the auth module, node B runs teams and secrets, so every secret read goes through B's cache.
import crypto from "crypto";
import path from "path";
import amqp from "amqplib";
import pg from "pg";
import { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase, uniqueNamespace, AMQP_URL } from "../helpers/infra";
import { ROOT } from "../helpers/broker";
import { freePort } from "../helpers/ports";
import { TEST_JWT_SECRET, TEST_SERVICE_IDENTITY_KEY, TEST_TRANSIT_KEY } from "../helpers/process";
import { loadConfig, setConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";
import { acquireDb, releaseDb } from "../../lib/db";
import { AUTH_FILES as AUTH } from "../helpers/gateway";

let PORT = 0;
const TOKEN_TTL = 10; // ACCESS_TOKEN_TTL's minimum: the expiry test waits about this long
const PASSWORD = "correct horse battery";
const MASTER_KEY = crypto.randomBytes(32).toString("base64");

type Res = { status: number; body: any };
type Creds = { token?: string; apiKey?: string; org?: string };
async function http(method: string, url: string, creds: Creds = {}, body?: unknown): Promise<Res> {
	const headers: Record<string, string> = {};
	if (creds.token) headers.authorization = `Bearer ${creds.token}`;
	if (creds.apiKey) headers["x-api-key"] = creds.apiKey;
	if (creds.org) headers["x-organization-id"] = creds.org;
	if (body !== undefined) headers["content-type"] = "application/json";
	const r = await fetch(`http://127.0.0.1:${PORT}/api${url}`, {
		method,
		headers,
		body: body === undefined ? undefined : JSON.stringify(body)
	});
	const text = await r.text();
	return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
const until = async (ms: number) => {
	while (Date.now() < ms) await new Promise(r => setTimeout(r, Math.min(100, Math.max(1, ms - Date.now()))));
};

describeWith(["postgres", "rabbitmq"])("credentials at the gateway (REST)", () => {
	const namespace = uniqueNamespace("cred");
	const nodeIds = [`${namespace}-a`, `${namespace}-b`];
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let sql: pg.Client;
	const brokers: ServiceBroker[] = [];
	let owner: any, member: any, orgId: string, ownerKey: string, secretId: string;

	const login = async (email: string) =>
		(await http("POST", "/auth/login", {}, { email, password: PASSWORD })).body.accessToken as string;
	const mintKey = async (creds: Creds, body: Record<string, unknown>) => http("POST", "/auth/api-keys", creds, body);

	async function node(nodeID: string, files: string[]) {
		const config = loadConfig({
			TRANSPORTER: AMQP_URL,
			DATABASE_URL: db.url,
			NAMESPACE: namespace,
			NODE_ID: nodeID,
			JWT_SECRET: TEST_JWT_SECRET,
			TRANSIT_KEY: TEST_TRANSIT_KEY,
			SERVICE_IDENTITY_KEY: TEST_SERVICE_IDENTITY_KEY,
			MASTER_KEY,
			ACCESS_TOKEN_TTL: String(TOKEN_TTL),
			PORT: String(PORT),
			HOST: "127.0.0.1",
			LOG_LEVEL: "warn"
		});
		setConfig(config);
		await acquireDb();
		const broker = new ServiceBroker({ ...brokerOptions(config), logger: false });
		for (const f of files) broker.loadService(path.resolve(ROOT, f));
		brokers.push(broker);
		return broker;
	}

	beforeAll(async () => {
		PORT = await freePort();
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		const a = await node(nodeIds[0], [...AUTH, "services/gateway/gateway.service.ts"]);
		const b = await node(nodeIds[1], ["services/auth/teams.service.ts", "services/secrets/secrets.service.ts"]);
		await Promise.all([a.start(), b.start()]);
		await a.waitForServices(["secrets", "auth-teams", "auth"], 20_000);
		// The gateway routes node B's services once it has seen them (moleculer-web regenerates its aliases).
		const deadline = Date.now() + 20_000;
		const routed = async () =>
			(await http("POST", "/auth/login", {}, {})).status !== 404 &&
			(await http("GET", "/secrets")).status !== 404;
		while (!(await routed()) && Date.now() < deadline) await new Promise(r => setTimeout(r, 100));

		const reg = async (email: string) =>
			(await http("POST", "/auth/register", {}, { email, password: PASSWORD, name: email.split("@")[0] })).body;
		owner = await reg("owner@example.com");
		member = await reg("member@example.com");
		orgId = owner.organization.id;
		const asOwner = { token: owner.accessToken, org: orgId };
		expect(
			(
				await http("POST", `/auth/organizations/${orgId}/members`, asOwner, {
					email: "member@example.com",
					role: "member"
				})
			).status
		).toBe(200);
		const secret = await http("POST", "/secrets", asOwner, {
			environment: "production",
			name: "DEPLOY_TOKEN",
			value: "deploy-VALUE-1"
		});
		expect(secret.status).toBe(200);
		secretId = secret.body.id;
		ownerKey = (await mintKey(asOwner, { name: "owner-full" })).body.key;
	}, 90_000);

	afterAll(async () => {
		for (const b of brokers) await b.stop().catch(() => undefined);
		for (const _ of brokers) await releaseDb();
		await sql?.end();
		await db?.drop();
		const conn = await amqp.connect(AMQP_URL).catch(() => undefined);
		if (conn) {
			const ch = await conn.createChannel();
			for (const id of nodeIds)
				for (const kind of ["REQ", "RES", "EVENT"])
					await ch.deleteQueue(`MOL-${namespace}.${kind}.${id}`).catch(() => undefined);
			await conn.close().catch(() => undefined);
		}
	});

	describe("an API key's ceiling", () => {
		test("a key minted by a limited key gets at most its role; asking for more is a 403 naming the role", async () => {
			const limited = (await mintKey({ apiKey: ownerKey }, { name: "ci", role: "member" })).body;
			expect(limited.role).toBe("member");
			expect((await http("POST", `/secrets/${secretId}/reveal`, { apiKey: limited.key })).status).toBe(403);

			const child = await mintKey({ apiKey: limited.key }, { name: "x" });
			expect(child.status).toBe(200);
			expect(child.body.role).toBe("member");
			expect((await http("POST", `/secrets/${secretId}/reveal`, { apiKey: child.body.key })).status).toBe(403);

			for (const role of ["admin", "owner"]) {
				const above = await mintKey({ apiKey: limited.key }, { name: "up", role });
				expect(above.status).toBe(403);
				expect(above.body.error.message).toContain(role);
			}
			expect((await mintKey({ apiKey: limited.key }, { name: "down", role: "viewer" })).body.role).toBe("viewer");
			// The owner's full-rights key still reveals: the refusals above are the ceiling, not a broken key.
			expect((await http("POST", `/secrets/${secretId}/reveal`, { apiKey: ownerKey })).body.value).toBe(
				"deploy-VALUE-1"
			);
		});

		test("a key minted by a key never outlives it: capped at its expiry, revoked with it", async () => {
			const parent = (await mintKey({ apiKey: ownerKey }, { name: "week", expiresInDays: 7 })).body;
			const longer = (await mintKey({ apiKey: parent.key }, { name: "year", expiresInDays: 365 })).body;
			const unlimited = (await mintKey({ apiKey: parent.key }, { name: "forever" })).body;
			const grandchild = (await mintKey({ apiKey: unlimited.key }, { name: "deeper" })).body;
			for (const k of [longer, unlimited, grandchild])
				expect(new Date(k.expires_at).getTime()).toBeLessThanOrEqual(new Date(parent.expires_at).getTime());
			expect((await http("GET", "/auth/me", { apiKey: grandchild.key })).status).toBe(200);

			expect((await http("DELETE", `/auth/api-keys/${parent.id}`, { apiKey: ownerKey })).status).toBe(200);
			for (const k of [parent, longer, unlimited, grandchild])
				expect([k.name, (await http("GET", "/auth/me", { apiKey: k.key })).status]).toEqual([k.name, 401]);
		});

		test("a key cannot revoke keys that are not its own descendants", async () => {
			const limited = (await mintKey({ apiKey: ownerKey }, { name: "limited", role: "member" })).body;
			const sibling = (await mintKey({ apiKey: ownerKey }, { name: "sibling" })).body;
			expect((await http("DELETE", `/auth/api-keys/${sibling.id}`, { apiKey: limited.key })).status).toBe(404);
			expect((await http("GET", "/auth/me", { apiKey: sibling.key })).status).toBe(200);
			const own = (await mintKey({ apiKey: limited.key }, { name: "own" })).body;
			expect((await http("DELETE", `/auth/api-keys/${own.id}`, { apiKey: limited.key })).status).toBe(200);
		});

		test("a key bound to its organization acts nowhere else", async () => {
			const token = await login("owner@example.com");
			const other = await http("POST", "/auth/organizations", { token }, { name: "Side project" });
			expect(other.status).toBe(200);
			const all = await http("GET", "/auth/organizations", { token });
			expect(all.body.map((o: any) => o.id).sort()).toEqual([orgId, other.body.id].sort());

			const key = ownerKey;
			const created = await http("POST", "/auth/organizations", { apiKey: key }, { name: "Sneaky" });
			expect(created.status).toBe(403);
			expect(created.body.error.message).toMatch(/API key/);
			expect((await http("GET", "/auth/organizations", { apiKey: key })).body.map((o: any) => o.id)).toEqual([
				orgId
			]);
			expect((await http("GET", "/auth/me", { apiKey: key })).body.organizations.map((o: any) => o.id)).toEqual([
				orgId
			]);
			// Switching organization, or reaching into the other one by id.
			expect((await http("GET", "/auth/teams", { apiKey: key, org: other.body.id })).status).toBe(403);
			expect((await http("GET", `/auth/organizations/${other.body.id}`, { apiKey: key })).status).toBe(404);
			expect(
				(
					await http(
						"POST",
						`/auth/organizations/${other.body.id}/members`,
						{ apiKey: key },
						{ email: "member@example.com" }
					)
				).status
			).toBe(404);
			expect((await http("DELETE", `/auth/organizations/${other.body.id}`, { apiKey: key })).status).toBe(404);
			// Its user's session still reaches both.
			expect((await http("GET", "/auth/teams", { token, org: other.body.id })).status).toBe(200);
		});

		test("a limited key cannot hand out a role above its own, by invitation or role change", async () => {
			const admin = (await mintKey({ apiKey: ownerKey }, { name: "admin", role: "admin" })).body;
			await http(
				"POST",
				"/auth/register",
				{},
				{ email: "invitee@example.com", password: PASSWORD, name: "invitee" }
			);
			const invite = await http(
				"POST",
				`/auth/organizations/${orgId}/members`,
				{ apiKey: admin.key },
				{ email: "invitee@example.com", role: "owner" }
			);
			expect(invite.status).toBe(403);
			expect(invite.body.error.message).toContain("owner");
			expect(
				(
					await http(
						"POST",
						`/auth/organizations/${orgId}/members`,
						{ apiKey: admin.key },
						{ email: "invitee@example.com", role: "member" }
					)
				).status
			).toBe(200);
			const userId = (await http("GET", `/auth/organizations/${orgId}/members`, { apiKey: admin.key })).body.find(
				(m: any) => m.email === "invitee@example.com"
			).userId;
			expect(
				(
					await http(
						"PATCH",
						`/auth/organizations/${orgId}/members/${userId}`,
						{ apiKey: admin.key },
						{ role: "owner" }
					)
				).status
			).toBe(403);
		});
	});

	describe("expiry at the gateway", () => {
		test("an access token stops working at its exp, even with its identity cached", async () => {
			const token = await login("owner@example.com");
			const exp = claimsOf(token).exp * 1000;
			// The identity is resolved (and cached) late in the token's life, then used right after its expiry.
			await until(exp - 1500);
			expect((await http("GET", "/auth/me", { token, org: orgId })).status).toBe(200);
			await until(exp + 1);
			const after = await http("GET", "/auth/me", { token, org: orgId });
			expect(after.status).toBe(401);
		}, 30_000);

		test("an API key stops working at its expires_at, even with its identity cached", async () => {
			const key = (await mintKey({ apiKey: ownerKey }, { name: "short", expiresInDays: 1 })).body;
			const { rows } = await sql.query(
				"UPDATE api_keys SET expires_at = now() + interval '2 seconds' WHERE id = $1 RETURNING expires_at",
				[key.id]
			);
			const expires = new Date(rows[0].expires_at).getTime();
			expect((await http("GET", "/auth/me", { apiKey: key.key })).status).toBe(200);
			await until(expires + 1);
			expect((await http("GET", "/auth/me", { apiKey: key.key })).status).toBe(401);
		}, 30_000);
	});

	describe("team-granted access ends with the membership, on every replica", () => {
		async function grantedMember() {
			const asOwner = { token: await login("owner@example.com"), org: orgId };
			const team = (
				await http("POST", "/auth/teams", asOwner, { name: `team-${crypto.randomBytes(3).toString("hex")}` })
			).body;
			expect(
				(await http("POST", `/auth/teams/${team.id}/members`, asOwner, { userId: member.user.id })).status
			).toBe(200);
			expect(
				(
					await http("POST", "/secrets/grants", asOwner, {
						secretId,
						permission: "read",
						granteeType: "team",
						granteeId: team.id
					})
				).status
			).toBe(200);
			const asMember = { token: await login("member@example.com"), org: orgId };
			// Team membership is now cached on node B, where secrets asks for it.
			expect((await http("POST", `/secrets/${secretId}/reveal`, asMember)).body.value).toBe("deploy-VALUE-1");
			expect((await http("POST", `/secrets/${secretId}/reveal`, asMember)).status).toBe(200);
			return { asOwner, asMember, team };
		}

		test("removed from the team: the very next reveal is refused", async () => {
			const { asOwner, asMember, team } = await grantedMember();
			expect((await http("DELETE", `/auth/teams/${team.id}/members/${member.user.id}`, asOwner)).status).toBe(
				200
			);
			expect((await http("POST", `/secrets/${secretId}/reveal`, asMember)).status).toBe(403);
		});

		test("the team deleted: the very next reveal is refused", async () => {
			const { asOwner, asMember, team } = await grantedMember();
			expect((await http("DELETE", `/auth/teams/${team.id}`, asOwner)).status).toBe(200);
			expect((await http("POST", `/secrets/${secretId}/reveal`, asMember)).status).toBe(403);
		});

		test("removed from the organization and added back: the old team grant is gone", async () => {
			const { asOwner, team } = await grantedMember();
			expect(
				(await http("DELETE", `/auth/organizations/${orgId}/members/${member.user.id}`, asOwner)).status
			).toBe(200);
			expect(
				(
					await http("POST", `/auth/organizations/${orgId}/members`, asOwner, {
						email: "member@example.com",
						role: "member"
					})
				).status
			).toBe(200);
			const asMember = { token: await login("member@example.com"), org: orgId };
			expect((await http("GET", `/auth/teams/${team.id}/members`, asOwner)).body).toEqual([]);
			expect((await http("POST", `/secrets/${secretId}/reveal`, asMember)).status).toBe(403);
		});
	});
});
