// Live notices through a real gateway: a write in one organization reaches the open sockets of that organization
// whose caller may read it, as `changed` { entity, id, action, label, actor }, never a value; another organization's
// sockets get nothing, and an API key is announced only to its owner and to managers.
import type { Socket } from "socket.io-client";
import { describeWith, createTestDatabase, uniqueNamespace, REDIS_URL } from "../helpers/infra";
import { startGateway, http, register, connect, TestGateway, Member } from "../helpers/gateway";

const FILES = ["secrets/secrets", "ai/ai", "ai/providers", "ai/deployments"].map(s => `services/${s}.service.ts`);

describeWith(["postgres", "redis"])("live notices", () => {
	const namespace = uniqueNamespace("live");
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	const sockets: Socket[] = [];
	let ana: Member, ben: Member, viewer: Member, other: Member;
	const seen = new Map<Socket, any[]>();

	const listen = async (m: Member, org = m.organization.id) => {
		const s = await connect(gw.port, { token: m.accessToken, organizationId: org });
		sockets.push(s);
		seen.set(s, []);
		s.on("changed", n => seen.get(s)!.push(n));
		return s;
	};
	const as = (m: Member, method: string, path: string, body?: unknown) =>
		http(gw.port, method, path, { token: m.accessToken, org: ana.organization.id, body });
	const settle = () => new Promise(r => setTimeout(r, 400));

	beforeAll(async () => {
		db = await createTestDatabase();
		gw = await startGateway(
			{
				DATABASE_URL: db.url,
				CACHER: REDIS_URL,
				REDIS_URL,
				NAMESPACE: namespace,
				AI_LOG_BATCH_MS: "0",
				AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1"
			},
			FILES
		);
		ana = await register(gw.port, "ana@live.test");
		ben = await register(gw.port, "ben@live.test");
		viewer = await register(gw.port, "vic@live.test");
		other = await register(gw.port, "oscar@live.test");
		const org = ana.organization.id;
		for (const [email, role] of [
			["ben@live.test", "member"],
			["vic@live.test", "viewer"]
		])
			expect((await as(ana, "POST", `/api/auth/organizations/${org}/members`, { email, role })).status).toBe(200);
	}, 60_000);

	afterAll(async () => {
		for (const s of sockets) s.close();
		await gw?.stop();
		await db?.drop();
	});

	test("a team, a secret and a provider reach the organization's sockets with who did it; never another's", async () => {
		const benSocket = await listen(ben, ana.organization.id);
		const otherSocket = await listen(other);
		const team = await as(ana, "POST", "/api/auth/teams", { name: "Backend" });
		expect(team.status).toBe(200);
		const secret = await as(ana, "POST", "/api/secrets", {
			environment: "development",
			name: "DB_PASSWORD",
			value: "hunter2-value"
		});
		expect(secret.status).toBe(200);
		const provider = await as(ana, "POST", "/api/ai/providers", { name: "Local", base_url: "http://127.0.0.1:9" });
		expect(provider.status).toBe(200);
		await settle();

		const got = seen.get(benSocket)!;
		expect(got).toEqual(
			expect.arrayContaining([
				{
					entity: "auth-teams",
					noun: "team",
					id: team.body.id,
					action: "created",
					label: "Backend",
					actor: { id: ana.user.id, name: "ana" }
				},
				expect.objectContaining({ entity: "secrets", id: secret.body.id, label: "development/DB_PASSWORD" }),
				expect.objectContaining({ entity: "ai-providers", id: provider.body.id, label: "Local" })
			])
		);
		expect(JSON.stringify(got)).not.toContain("hunter2");
		expect(seen.get(otherSocket)).toEqual([]);
	});

	test("a member's API key is announced to its owner and to admins, not to other members", async () => {
		const benSocket = await listen(ben, ana.organization.id);
		const vicSocket = await listen(viewer, ana.organization.id);
		const anaSocket = await listen(ana);
		const key = await as(ben, "POST", "/api/auth/api-keys", { name: "laptop" });
		expect(key.status).toBe(200);
		await settle();
		const keyNotice = (s: Socket) => seen.get(s)!.filter(n => n.entity === "auth-api-keys");
		expect(keyNotice(benSocket)).toEqual([expect.objectContaining({ id: key.body.id, action: "created" })]);
		expect(keyNotice(anaSocket)).toHaveLength(1);
		expect(keyNotice(vicSocket)).toEqual([]);
		expect(JSON.stringify(seen.get(anaSocket))).not.toContain(key.body.key);
	});

	test("a new member is announced to the organization's readers, a role change too; the other organization hears nothing", async () => {
		const vicSocket = await listen(viewer, ana.organization.id);
		const otherSocket = await listen(other);
		const dora = await register(gw.port, "dora@live.test");
		const org = ana.organization.id;
		const added = await as(ana, "POST", `/api/auth/organizations/${org}/members`, {
			email: "dora@live.test",
			role: "viewer"
		});
		expect(added.status).toBe(200);
		const changed = await as(ana, "PATCH", `/api/auth/organizations/${org}/members/${dora.user.id}`, {
			role: "member"
		});
		expect(changed.status).toBe(200);
		await settle();
		const notices = seen.get(vicSocket)!.filter(n => n.entity === "auth-members");
		expect(notices).toEqual([
			expect.objectContaining({ id: dora.user.id, action: "created", label: "dora" }),
			expect.objectContaining({ id: dora.user.id, action: "updated", label: "dora" })
		]);
		expect(seen.get(otherSocket)).toEqual([]);
	});
});
