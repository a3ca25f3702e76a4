// A job's principal and managed prompts: a service acting for an organization without a user completes a prompt
// (prompts.complete, prompts.stream); prompts calls the AI as itself for that organization, so the completion log
// names service `prompts` and the execution names no user. A job that may not use the AI itself, or that has no
// proof, is refused.
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { FakeOpenAI } from "../helpers/fake-openai";
import { AI_STACK, drain } from "../helpers/ai";
import { getConfig } from "../../lib/config";
import type { AuthInfo } from "../../lib/permissions";
import { deriveCredential, IDENTITY_META, permissionsBinding, signCall } from "../../lib/service-identity";

jest.setTimeout(60_000);

const FILES = [
	...AI_STACK,
	"services/prompts/prompts.service.ts",
	"services/prompts/executions.service.ts",
	"test/fixtures/services/demo-prompt-job/demo-prompt-job.service.ts"
];
const JOB = "demo-prompt-job";

describeWith(["postgres"])("a service completes a managed prompt for an organization", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	let sql: pg.Client;
	const up = new FakeOpenAI();
	let org: string, otherOrg: string;
	const run = (organizationId: string, action: string, params: object) =>
		broker.call<any, any>(`${JOB}.run`, { organizationId, action, params });
	const nightly = { name: "nightly", variables: { builds: "3 green, 1 red" } };

	beforeAll(async () => {
		const base = await up.start();
		db = await createTestDatabase();
		sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		const env = { DATABASE_URL: db.url, AI_LOG_BATCH_MS: "0", AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" };
		({ broker, stop } = await createTestBroker(env, FILES));
		const owner = async (email: string) => {
			const o: any = await broker.call("auth.register", { email, password: "correct horse battery", name: "O" });
			const auth = await broker.call<AuthInfo, object>("auth.resolve", {
				token: o.accessToken,
				organizationId: o.organization.id
			});
			return { id: o.organization.id as string, auth };
		};
		const a = await owner("prompt-jobs@example.com");
		const b = await owner("prompt-jobs-other@example.com");
		[org, otherOrg] = [a.id, b.id];
		await broker.call(
			"secrets.create",
			{ environment: "production", name: "KEY", value: "sk-prompt-job-1" },
			as(a.auth)
		);
		const p: any = await broker.call(
			"ai-providers.create",
			{ name: "p", base_url: base, api_key_secret: "KEY" },
			as(a.auth)
		);
		await broker.call(
			"ai-deployments.create",
			{ provider_id: p.id, name: "smart", provider_model: "a-smart", input_price: 3, output_price: 15 },
			as(a.auth)
		);
		await broker.call(
			"prompts.create",
			{
				name: "nightly",
				messages: [{ role: "user", content: "Summarize the night's builds: {{ builds }}" }],
				variables: [{ name: "builds", type: "string" }],
				model_settings: { model: "smart" },
				label: "production"
			},
			as(a.auth)
		);
	}, 60_000);

	afterAll(async () => {
		await stop?.();
		await up.stop();
		await sql?.end();
		await db?.drop();
	});

	const executionOf = async (id: string) =>
		(await sql.query("SELECT * FROM prompts_executions WHERE id = $1", [id])).rows[0];
	const logOf = async (requestId: string) =>
		(
			await sql.query(
				"SELECT service, user_id, api_key_id, status, prompt, cost FROM ai_completion_logs WHERE request_id = $1",
				[requestId]
			)
		).rows;

	test("prompts.complete: the AI is called as service prompts for the organization, with no user", async () => {
		const r = await run(org, "prompts.complete", nightly);
		expect(r.completion.choices[0].message.content).toBe(
			"echo(a-smart): Summarize the night's builds: 3 green, 1 red"
		);
		const exec = await executionOf(r.execution_id);
		expect(exec).toMatchObject({ organization_id: org, user_id: null, kind: "complete", success: true });
		const logs = await logOf(exec.request_id);
		expect(logs).toEqual([
			expect.objectContaining({
				service: "prompts",
				user_id: null,
				api_key_id: null,
				status: "success",
				prompt: { templateId: r.template.id, versionId: r.version.id, variantId: null }
			})
		]);
		expect(Number(exec.cost)).toBe(Number(logs[0].cost));
		expect(Number(exec.cost)).toBeGreaterThan(0);
	});

	test("prompts.stream: the same, streamed; the execution is recorded when it ends", async () => {
		const items = await drain(await run(org, "prompts.stream", nightly));
		const done = items.at(-1);
		expect(done).toMatchObject({ done: true, prompt: { template: { name: "nightly" } } });
		const exec = await executionOf(done.prompt.execution_id);
		expect(exec).toMatchObject({ organization_id: org, user_id: null, kind: "complete", success: true });
		expect(await logOf(done.requestId)).toEqual([
			expect.objectContaining({ service: "prompts", status: "success" })
		]);
	});

	test("the organization's templates only: another organization's job does not find this one", async () => {
		await expect(run(otherOrg, "prompts.complete", nightly)).rejects.toMatchObject({ code: 404 });
	});

	test("a job that may not use the AI itself, or that has no proof, completes nothing", async () => {
		const before = up.count();
		const principal = (permissions: string[]): AuthInfo => ({
			kind: "service",
			service: JOB,
			organizationId: org,
			boundOrganizationId: org,
			permissions
		});
		const cred = deriveCredential(getConfig().serviceIdentityKey!, JOB);
		// Proven for prompts.complete, but declaring prompts:write alone: no completion through prompts either.
		const narrow = ["prompts:write"];
		const proof = signCall(JOB, cred, "prompts.complete", org, permissionsBinding(narrow));
		await expect(
			broker.call("prompts.complete", nightly, { meta: { auth: principal(narrow), [IDENTITY_META]: proof } })
		).rejects.toMatchObject({ code: 403, message: expect.stringContaining("ai:write") });
		// Without its proof, whatever its meta claims.
		await expect(
			broker.call("prompts.complete", nightly, { meta: { auth: principal(["prompts:write", "ai:write"]) } })
		).rejects.toMatchObject({ code: 403 });
		// Nor can a caller pass as prompts to the AI: its proof is for prompts.complete, not ai.complete.
		const asPrompts = signCall(JOB, cred, "ai.complete", org, permissionsBinding(["ai:write"]));
		await expect(
			broker.call(
				"ai.complete",
				{ model: "smart", messages: [{ role: "user", content: "x" }] },
				{ meta: { auth: { ...principal(["ai:write"]), service: "prompts" }, [IDENTITY_META]: asPrompts } }
			)
		).rejects.toMatchObject({ code: 403 });
		expect(up.count()).toBe(before);
	});
});
