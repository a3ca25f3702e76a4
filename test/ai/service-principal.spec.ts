// A service acting for an organization without a user (a job's principal): a background job calls ai.complete as
// itself, with what its manifest declares, and the completion log names it; a principal without its proof is refused.
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { FakeOpenAI } from "../helpers/fake-openai";
import { getConfig } from "../../lib/config";
import type { AuthInfo } from "../../lib/permissions";
import { deriveCredential, IDENTITY_META, permissionsBinding, signCall } from "../../lib/service-identity";
import { AI_STACK } from "../helpers/ai";

const FILES = [...AI_STACK, "test/fixtures/services/demo-job/demo-job.service.ts"];
const KEY = "sk-job-provider-key-5d2a90";

describeWith(["postgres"])("a service acting for an organization", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	let sql: pg.Client;
	const up = new FakeOpenAI();
	let org: string;

	// What the fixture's principal looks like; a forger can write all of it, but not the proof.
	const principal = (organizationId = org, permissions = ["ai:write"]): AuthInfo => ({
		kind: "service",
		service: "demo-job",
		organizationId,
		boundOrganizationId: organizationId,
		permissions
	});
	const ask = { model: "smart", messages: [{ role: "user", content: "summarize the night's builds" }] };

	beforeAll(async () => {
		const base = await up.start();
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		const env = { DATABASE_URL: db.url, AI_LOG_BATCH_MS: "0", AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" };
		const t = await createTestBroker(env, FILES);
		broker = t.broker;
		stop = t.stop;
		const owner: any = await broker.call("auth.register", {
			email: "jobs@example.com",
			password: "correct horse battery",
			name: "Jobs"
		});
		org = owner.organization.id;
		const auth = await broker.call("auth.resolve", { token: owner.accessToken, organizationId: org });
		await broker.call(
			"secrets.create",
			{ environment: "production", name: "JOB_KEY", value: KEY },
			as(auth as AuthInfo)
		);
		const p: any = await broker.call(
			"ai-providers.create",
			{ name: "p", base_url: base, api_key_secret: "JOB_KEY" },
			as(auth as AuthInfo)
		);
		await broker.call(
			"ai-deployments.create",
			{ provider_id: p.id, name: "smart", provider_model: "a-smart" },
			as(auth as AuthInfo)
		);
	}, 60_000);

	afterAll(async () => {
		await stop?.();
		await up.stop();
		await sql?.end();
		await db?.drop();
	});

	test("a job calls ai.complete for an organization without a user, and the completion log names the service", async () => {
		const r: any = await broker.call("demo-job.summarize", { organizationId: org, model: "smart", text: "hello" });
		expect(r.choices[0].message.content).toBe("echo(a-smart): hello");
		expect(up.requests.at(-1)!.authorization).toBe(`Bearer ${KEY}`);
		const rows = (await sql.query("SELECT * FROM ai_completion_logs WHERE organization_id = $1", [org])).rows;
		expect(rows).toHaveLength(1);
		expect(rows[0]).toMatchObject({ service: "demo-job", user_id: null, api_key_id: null, status: "success" });
	});

	test("a principal without its service's proof is refused, whatever its meta claims", async () => {
		const forged = principal();
		await expect(broker.call("ai.complete", ask, as(forged))).rejects.toMatchObject({ code: 403 });
		// A real token for one action or organization does not carry over to another.
		const cred = deriveCredential(getConfig().serviceIdentityKey!, "demo-job");
		const binding = permissionsBinding(["ai:write"]);
		const forEmbed = signCall("demo-job", cred, "ai.embed", org, binding);
		await expect(
			broker.call("ai.complete", ask, { meta: { auth: forged, [IDENTITY_META]: forEmbed } })
		).rejects.toMatchObject({ code: 403 });
		// Permissions widened after signing are not the ones proven.
		const signed = signCall("demo-job", cred, "ai.configure", org, binding);
		const widened = principal(org, ["ai:manage"]);
		await expect(
			broker.call("ai.configure", { cooldownSeconds: 5 }, { meta: { auth: widened, [IDENTITY_META]: signed } })
		).rejects.toMatchObject({ code: 403 });
		// With its proof and a permission it declares, the same call goes through.
		const ok = signCall("demo-job", cred, "ai.complete", org, binding);
		await expect(
			broker.call("ai.complete", ask, { meta: { auth: forged, [IDENTITY_META]: ok } })
		).resolves.toMatchObject({ object: "chat.completion" });
	});

	test("a service acts only with the permissions its manifest declares", async () => {
		const job: any = broker.getLocalService("demo-job");
		await expect(job.callForOrganization(org, "ai.configure", { cooldownSeconds: 5 })).rejects.toMatchObject({
			code: 403,
			message: expect.stringContaining("does not declare permission ai:manage")
		});
	});
});
