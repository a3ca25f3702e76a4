// Secrets against real PostgreSQL: encryption at rest, versions, access by role and grant, audit chain, .env.
import crypto from "crypto";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";

const FILES = [
	"services/auth/auth.service.ts",
	"services/auth/organizations.service.ts",
	"services/auth/teams.service.ts",
	"services/secrets/secrets.service.ts"
];
const KEY_A = crypto.randomBytes(32).toString("base64");
const KEY_B = crypto.randomBytes(32).toString("base64");
// Distinctive values: the scans below look for them anywhere they must not be.
const SECRET_VALUES = ["sk-test-PLAINTEXT-4f1c2a9e", "ghp_second_VALUE_7d3b", "rolled-back-VALUE-91aa"];

describeWith(["postgres"])("secrets module (PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	let sql: pg.Client;
	let owner: any, ownerAuth: any, memberAuth: any, viewerAuth: any, member: any, viewer: any, otherAuth: any;

	const register = async (email: string) =>
		broker.call<any, any>("auth.register", { email, password: "correct horse battery", name: email.split("@")[0] });
	const resolve = (token: string, organizationId: string) =>
		broker.call<any, any>("auth.resolve", { token, organizationId });
	const start = async (env: Record<string, string>) => {
		const t = await createTestBroker({ DATABASE_URL: db.url, ...env }, FILES);
		broker = t.broker;
		stop = t.stop;
	};

	beforeAll(async () => {
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		await start({ MASTER_KEY: KEY_A });
		owner = await register("owner@example.com");
		ownerAuth = await resolve(owner.accessToken, owner.organization.id);
		member = await register("member@example.com");
		viewer = await register("viewer@example.com");
		await broker.call(
			"auth-organizations.addMember",
			{ id: owner.organization.id, email: "member@example.com", role: "member" },
			as(ownerAuth)
		);
		await broker.call(
			"auth-organizations.addMember",
			{ id: owner.organization.id, email: "viewer@example.com", role: "viewer" },
			as(ownerAuth)
		);
		memberAuth = await resolve(member.accessToken, owner.organization.id);
		viewerAuth = await resolve(viewer.accessToken, owner.organization.id);
		const other = await register("other@example.com");
		otherAuth = await resolve(other.accessToken, other.organization.id);
	}, 60_000);

	afterAll(async () => {
		await stop?.();
		await sql?.end();
		await db?.drop();
	});

	let apiKey: any;
	test("create, list (names only), reveal", async () => {
		apiKey = await broker.call(
			"secrets.create",
			{ environment: "production", name: "OPENAI_API_KEY", value: SECRET_VALUES[0], tags: ["ai"] },
			as(ownerAuth)
		);
		expect(apiKey).toMatchObject({ name: "OPENAI_API_KEY", environment: "production", current_version: 1 });
		expect(JSON.stringify(apiKey)).not.toContain(SECRET_VALUES[0]);
		const listed: any[] = await broker.call("secrets.list", { environment: "production" }, as(viewerAuth));
		expect(listed.map(s => s.name)).toEqual(["OPENAI_API_KEY"]);
		expect(JSON.stringify(listed)).not.toContain(SECRET_VALUES[0]);
		expect(await broker.call("secrets.reveal", { id: apiKey.id }, as(ownerAuth))).toMatchObject({
			value: SECRET_VALUES[0],
			version: 1
		});
		await expect(
			broker.call(
				"secrets.create",
				{ environment: "production", name: "OPENAI_API_KEY", value: "x" },
				as(ownerAuth)
			)
		).rejects.toMatchObject({ code: 409 });
		await expect(
			broker.call("secrets.create", { environment: "moon", name: "X", value: "x" }, as(ownerAuth))
		).rejects.toMatchObject({
			code: 422,
			data: [expect.objectContaining({ field: "environment" })]
		});
		await expect(
			broker.call("secrets.create", { environment: "production", name: "bad name!", value: "x" }, as(ownerAuth))
		).rejects.toMatchObject({
			code: 422,
			data: [expect.objectContaining({ field: "name" })]
		});
	});

	test("the database holds no plaintext value and no plaintext data key", async () => {
		const vault = (
			await sql.query("SELECT * FROM vault_configurations WHERE organization_id = $1", [owner.organization.id])
		).rows[0];
		const svc: any = broker.getLocalService("secrets");
		const dek: Buffer = svc.dataKey(vault);
		const needles = [...SECRET_VALUES.slice(0, 1).map(v => Buffer.from(v)), dek, Buffer.from(KEY_A, "base64")];
		const tables = (await sql.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).rows.map(
			r => r.tablename
		);
		for (const table of tables) {
			const rows = (await sql.query(`SELECT * FROM ${table}`)).rows;
			for (const row of rows)
				for (const v of Object.values(row)) {
					const bytes = Buffer.isBuffer(v)
						? v
						: Buffer.from(typeof v === "string" ? v : JSON.stringify(v ?? null));
					for (const needle of needles) expect([table, bytes.includes(needle)]).toEqual([table, false]);
					// Also no hex or base64 spelling of the data key.
					expect([
						table,
						bytes.toString().includes(dek.toString("hex")) ||
							bytes.toString().includes(dek.toString("base64"))
					]).toEqual([table, false]);
				}
		}
	});

	test("a ciphertext copied to another secret's row does not decrypt", async () => {
		const other: any = await broker.call(
			"secrets.create",
			{ environment: "production", name: "SECOND", value: SECRET_VALUES[1] },
			as(ownerAuth)
		);
		await sql.query(
			`UPDATE secret_versions t SET ciphertext = s.ciphertext, iv = s.iv, auth_tag = s.auth_tag
			 FROM secret_versions s WHERE s.secret_id = $1 AND s.version = 1 AND t.secret_id = $2 AND t.version = 1`,
			[apiKey.id, other.id]
		);
		await expect(broker.call("secrets.reveal", { id: other.id }, as(ownerAuth))).rejects.toMatchObject({
			code: 500,
			type: "DECRYPT_FAILED"
		});
		// A data-key rotation refuses to carry a corrupt version along; destroying it is the way out.
		await expect(broker.call("secrets.rotateDataKey", {}, as(ownerAuth))).rejects.toMatchObject({
			type: "DECRYPT_FAILED"
		});
		await broker.call("secrets.destroyVersion", { id: other.id, version: 1 }, as(ownerAuth));
		await broker.call("secrets.remove", { id: other.id }, as(ownerAuth));
	});

	test("check-and-set: a stale version is a 409; 20 concurrent writers make 20 consecutive versions", async () => {
		const s: any = await broker.call(
			"secrets.create",
			{ environment: "staging", name: "DB_PASSWORD", value: "v1" },
			as(ownerAuth)
		);
		await broker.call("secrets.update", { id: s.id, value: "v2", cas: 1 }, as(ownerAuth));
		await expect(
			broker.call("secrets.update", { id: s.id, value: "v3", cas: 1 }, as(ownerAuth))
		).rejects.toMatchObject({ code: 409 });
		await Promise.all(
			Array.from({ length: 20 }, (_, i) =>
				broker.call("secrets.update", { id: s.id, value: `writer-${i}` }, as(ownerAuth))
			)
		);
		const got: any = await broker.call("secrets.get", { id: s.id }, as(ownerAuth));
		expect(got.current_version).toBe(22);
		expect(got.versions.map((v: any) => v.version)).toEqual(Array.from({ length: 22 }, (_, i) => 22 - i));
		const values = new Set<string>();
		for (let v = 3; v <= 22; v++)
			values.add(((await broker.call("secrets.reveal", { id: s.id, version: v }, as(ownerAuth))) as any).value);
		expect(values.size).toBe(20);
	});

	test("rollback, soft delete, restore, destroy a version", async () => {
		const s: any = await broker.call(
			"secrets.create",
			{ environment: "development", name: "ROLL", value: SECRET_VALUES[2] },
			as(ownerAuth)
		);
		await broker.call("secrets.update", { id: s.id, value: "newer" }, as(ownerAuth));
		const rolled: any = await broker.call("secrets.rollback", { id: s.id, version: 1 }, as(ownerAuth));
		expect(rolled.current_version).toBe(3);
		expect(await broker.call("secrets.reveal", { id: s.id }, as(ownerAuth))).toMatchObject({
			version: 3,
			value: SECRET_VALUES[2]
		});

		await broker.call("secrets.remove", { id: s.id }, as(ownerAuth));
		await expect(broker.call("secrets.reveal", { id: s.id }, as(ownerAuth))).rejects.toMatchObject({ code: 404 });
		expect(((await broker.call("secrets.list", {}, as(ownerAuth))) as any[]).some(x => x.id === s.id)).toBe(false);
		await broker.call("secrets.restore", { id: s.id }, as(ownerAuth));
		expect(await broker.call("secrets.reveal", { id: s.id }, as(ownerAuth))).toMatchObject({
			value: SECRET_VALUES[2]
		});

		await broker.call("secrets.destroyVersion", { id: s.id, version: 1 }, as(ownerAuth));
		await expect(broker.call("secrets.reveal", { id: s.id, version: 1 }, as(ownerAuth))).rejects.toMatchObject({
			code: 404
		});
		const row = (
			await sql.query(
				"SELECT ciphertext, destroyed_at FROM secret_versions WHERE secret_id = $1 AND version = 1",
				[s.id]
			)
		).rows[0];
		expect(row.ciphertext).toBeNull();
		expect(row.destroyed_at).not.toBeNull();
		expect(await broker.call("secrets.reveal", { id: s.id, version: 2 }, as(ownerAuth))).toMatchObject({
			value: "newer"
		});
	});

	test("versions beyond the organization's limit are dropped, oldest first", async () => {
		await broker.call("secrets.configure", { maxVersions: 3 }, as(ownerAuth));
		const s: any = await broker.call(
			"secrets.create",
			{ environment: "development", name: "LIMITED", value: "1" },
			as(ownerAuth)
		);
		for (const v of ["2", "3", "4", "5"])
			await broker.call("secrets.update", { id: s.id, value: v }, as(ownerAuth));
		const got: any = await broker.call("secrets.get", { id: s.id }, as(ownerAuth));
		expect(got.versions.map((v: any) => v.version)).toEqual([5, 4, 3]);
		await broker.call("secrets.configure", { maxVersions: 50 }, as(ownerAuth));
	});

	test("access: who can list, reveal and write, by role and grant", async () => {
		// Viewers and members see names; values only through a grant.
		expect(((await broker.call("secrets.list", {}, as(memberAuth))) as any[]).length).toBeGreaterThan(0);
		await expect(broker.call("secrets.reveal", { id: apiKey.id }, as(viewerAuth))).rejects.toMatchObject({
			code: 403
		});
		await expect(broker.call("secrets.reveal", { id: apiKey.id }, as(memberAuth))).rejects.toMatchObject({
			code: 403
		});
		await expect(
			broker.call("secrets.update", { id: apiKey.id, value: "x" }, as(memberAuth))
		).rejects.toMatchObject({ code: 403 });
		await expect(
			broker.call(
				"secrets.grant",
				{ secretId: apiKey.id, permission: "read", granteeType: "user", granteeId: member.user.id },
				as(memberAuth)
			)
		).rejects.toMatchObject({
			code: 403
		});

		// A read grant to the viewer for one secret.
		await broker.call(
			"secrets.grant",
			{ secretId: apiKey.id, permission: "read", granteeType: "user", granteeId: viewer.user.id },
			as(ownerAuth)
		);
		expect(await broker.call("secrets.reveal", { id: apiKey.id }, as(viewerAuth))).toMatchObject({
			value: SECRET_VALUES[0]
		});
		await expect(
			broker.call("secrets.update", { id: apiKey.id, value: "x" }, as(viewerAuth))
		).rejects.toMatchObject({ code: 403 });

		// A write grant to a team on a name prefix in one environment.
		const team: any = await broker.call("auth-teams.create", { name: "Backend" }, as(ownerAuth));
		await broker.call("auth-teams.addMember", { id: team.id, userId: member.user.id }, as(ownerAuth));
		await broker.call(
			"secrets.grant",
			{ environment: "staging", namePrefix: "DB_", permission: "write", granteeType: "team", granteeId: team.id },
			as(ownerAuth)
		);
		const created: any = await broker.call(
			"secrets.create",
			{ environment: "staging", name: "DB_REPLICA", value: "replica-pw" },
			as(memberAuth)
		);
		expect(await broker.call("secrets.reveal", { id: created.id }, as(memberAuth))).toMatchObject({
			value: "replica-pw"
		});
		await expect(
			broker.call("secrets.create", { environment: "production", name: "DB_MAIN", value: "x" }, as(memberAuth))
		).rejects.toMatchObject({ code: 403 });
		await expect(
			broker.call("secrets.create", { environment: "staging", name: "API_TOKEN", value: "x" }, as(memberAuth))
		).rejects.toMatchObject({ code: 403 });

		// An expired grant no longer works.
		const g: any = await broker.call(
			"secrets.grant",
			{
				secretId: apiKey.id,
				permission: "read",
				granteeType: "user",
				granteeId: member.user.id,
				expiresAt: new Date(Date.now() + 60_000).toISOString()
			},
			as(ownerAuth)
		);
		expect(await broker.call("secrets.reveal", { id: apiKey.id }, as(memberAuth))).toMatchObject({
			value: SECRET_VALUES[0]
		});
		await sql.query("UPDATE secret_access_grants SET expires_at = now() - interval '1 second' WHERE id = $1", [
			g.id
		]);
		await expect(broker.call("secrets.reveal", { id: apiKey.id }, as(memberAuth))).rejects.toMatchObject({
			code: 403
		});
	});

	test("organization B can never touch A's secrets by any id", async () => {
		for (const [action, params] of [
			["secrets.get", { id: apiKey.id }],
			["secrets.reveal", { id: apiKey.id }],
			["secrets.update", { id: apiKey.id, value: "pwned" }],
			["secrets.rollback", { id: apiKey.id, version: 1 }],
			["secrets.remove", { id: apiKey.id }],
			["secrets.restore", { id: apiKey.id }],
			["secrets.destroyVersion", { id: apiKey.id, version: 1 }]
		] as [string, any][]) {
			const err: any = await broker.call(action, params, as(otherAuth)).catch(e => e);
			expect([action, err.code]).toEqual([action, 404]);
		}
		await expect(
			broker.call(
				"secrets.grant",
				{ secretId: apiKey.id, permission: "read", granteeType: "user", granteeId: otherAuth.userId },
				as(otherAuth)
			)
		).rejects.toMatchObject({
			code: 404
		});
		expect(await broker.call("secrets.list", {}, as(otherAuth))).toEqual([]);
		expect(await broker.call("secrets.reveal", { id: apiKey.id }, as(ownerAuth))).toMatchObject({
			value: SECRET_VALUES[0]
		});
	});

	test("import and export an environment as .env", async () => {
		const content = `# comment\nexport API_URL=https://api.example.com\nQUOTED="line1\\nline2 'q'"\nSINGLE='a "b" c'\n`;
		const r: any = await broker.call("secrets.import", { environment: "development", content }, as(ownerAuth));
		expect(r.created.sort()).toEqual(["API_URL", "QUOTED", "SINGLE"]);
		const again: any = await broker.call(
			"secrets.import",
			{ environment: "development", content: "API_URL=changed\n" },
			as(ownerAuth)
		);
		expect(again.skipped).toEqual(["API_URL"]);
		const exp: any = await broker.call("secrets.export", { environment: "development" }, as(ownerAuth));
		expect(exp.content).toContain("API_URL='https://api.example.com'");
		expect(exp.content).toContain("QUOTED=`line1\nline2 'q'`");
		const roundTrip: any = await broker.call(
			"secrets.import",
			{ environment: "staging", content: exp.content },
			as(ownerAuth)
		);
		expect(roundTrip.created).toContain("QUOTED");
		const staged = (await broker.call("secrets.list", { environment: "staging" }, as(ownerAuth))) as any[];
		const reveal = (name: string) =>
			broker.call("secrets.reveal", { id: staged.find(s => s.name === name).id }, as(ownerAuth));
		expect(await reveal("QUOTED")).toMatchObject({ value: "line1\nline2 'q'" });
		expect(await reveal("SINGLE")).toMatchObject({ value: 'a "b" c' });
		// What dotenv would skip or cut without a word is refused with its line.
		await expect(
			broker.call(
				"secrets.import",
				{ environment: "development", content: "A=1\nPASSWORD=abc#123\n" },
				as(ownerAuth)
			)
		).rejects.toMatchObject({
			code: 422,
			message: expect.stringContaining("line 2: PASSWORD")
		});
		await expect(
			broker.call("secrets.import", { environment: "development", content: "not a line" }, as(ownerAuth))
		).rejects.toMatchObject({ code: 422 });
		await expect(
			broker.call("secrets.export", { environment: "development" }, as(memberAuth))
		).rejects.toMatchObject({ code: 403 });
	});

	test("every operation and denied attempt is audited; verify finds an altered or removed entry", async () => {
		const entries: any[] = await broker.call("secrets.audit", { limit: 500 }, as(ownerAuth));
		const actions = new Set(entries.map(e => `${e.action}:${e.outcome}`));
		for (const a of [
			"create:success",
			"reveal:success",
			"update:success",
			"rollback:success",
			"delete:success",
			"restore:success",
			"destroy-version:success",
			"grant:success",
			"reveal:denied",
			"update:denied",
			"import:success",
			"export:success",
			"configure:success"
		])
			expect([a, actions.has(a)]).toEqual([a, true]);
		expect(JSON.stringify(entries)).not.toContain(SECRET_VALUES[0]);
		expect(await broker.call("secrets.audit.verify", {}, as(ownerAuth))).toMatchObject({ ok: true });

		const victim = entries[Math.floor(entries.length / 2)];
		await sql.query(
			"UPDATE secret_audit_logs SET actor_id = 'someone-else' WHERE organization_id = $1 AND seq = $2",
			[owner.organization.id, victim.seq]
		);
		expect(await broker.call("secrets.audit.verify", {}, as(ownerAuth))).toMatchObject({
			ok: false,
			firstBad: { seq: Number(victim.seq), problem: "altered" }
		});

		const head = (
			await sql.query("SELECT seq AS audit_seq FROM secret_audit_heads WHERE organization_id = $1", [
				owner.organization.id
			])
		).rows[0].audit_seq;
		const otherOrgVerify: any = await broker.call("secrets.audit.verify", {}, as(otherAuth));
		expect(otherOrgVerify.ok).toBe(true);
		await sql.query("DELETE FROM secret_audit_logs WHERE organization_id = $1 AND seq = $2", [
			owner.organization.id,
			Number(head)
		]);
		await sql.query("UPDATE secret_audit_logs SET actor_id = $3 WHERE organization_id = $1 AND seq = $2", [
			owner.organization.id,
			victim.seq,
			victim.actor_id
		]);
		expect(await broker.call("secrets.audit.verify", {}, as(ownerAuth))).toMatchObject({
			ok: false,
			firstBad: { seq: Number(head), problem: "removed" }
		});
	});

	test("data-key and master-key rotation keep every version readable; a wrong master key stops start-up", async () => {
		const s: any = await broker.call(
			"secrets.create",
			{ environment: "production", name: "ROTATED", value: "r1" },
			as(ownerAuth)
		);
		await broker.call("secrets.update", { id: s.id, value: "r2" }, as(ownerAuth));
		const before = (
			await sql.query("SELECT ciphertext FROM secret_versions WHERE secret_id = $1 AND version = 1", [s.id])
		).rows[0].ciphertext;
		const rotated: any = await broker.call("secrets.rotateDataKey", {}, as(ownerAuth));
		expect(rotated.keyVersion).toBe(2);
		const after = (
			await sql.query(
				"SELECT ciphertext, key_version FROM secret_versions WHERE secret_id = $1 AND version = 1",
				[s.id]
			)
		).rows[0];
		expect(after.key_version).toBe(2);
		expect(Buffer.compare(before, after.ciphertext)).not.toBe(0);
		expect(await broker.call("secrets.reveal", { id: s.id, version: 1 }, as(ownerAuth))).toMatchObject({
			value: "r1"
		});
		await expect(broker.call("secrets.rotateDataKey", {}, as(memberAuth))).rejects.toMatchObject({ code: 403 });

		// Master key rotation: new key current, old key previous, re-wrap, then the old key can go.
		await stop();
		await start({ MASTER_KEY: KEY_B, MASTER_KEY_PREVIOUS: KEY_A });
		const rewrap: any = await broker.call("secrets.rotateMasterKey");
		expect(rewrap.rewrapped).toBeGreaterThanOrEqual(1);
		await stop();
		await start({ MASTER_KEY: KEY_B });
		expect(await broker.call("secrets.reveal", { id: s.id, version: 2 }, as(ownerAuth))).toMatchObject({
			value: "r2"
		});
		expect(await broker.call("secrets.reveal", { id: apiKey.id }, as(ownerAuth))).toMatchObject({
			value: SECRET_VALUES[0]
		});
		await stop();

		// The old key alone no longer matches anything: refused at start-up, with the key ids named.
		await expect(start({ MASTER_KEY: KEY_A })).rejects.toThrow(
			/MASTER_KEY: the data keys were wrapped with master key id/
		);
		await stop().catch(() => undefined);
		await expect(start({ MASTER_KEY: "too-short" })).rejects.toThrow(/MASTER_KEY: must be 32 bytes/);
		await start({ MASTER_KEY: KEY_B });
	}, 60_000);
});
