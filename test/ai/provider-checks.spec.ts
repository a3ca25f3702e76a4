// Provider checks as an admin uses them from the Providers page: "Test connection" with the provider's real key
// through the egress-checked transport (ok with latency, or a classified failure that never carries the key), the
// upstream's model list and importing from it (all or nothing), and the routers' health view per deployment.
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { FakeOpenAI } from "../helpers/fake-openai";
import { AI_STACK, ask } from "../helpers/ai";

const KEY = "sk-provider-check-KEY-91c0ffee";

describeWith(["postgres"])("AI provider checks", () => {
	let broker: ServiceBroker;
	let stop: () => Promise<void>;
	const up = new FakeOpenAI();
	let auth: any, otherAuth: any, provider: any, dead: any, base: string;
	const call = (action: string, params: any, who = auth) => broker.call<any, any>(action, params, as(who));

	beforeAll(async () => {
		base = await up.start();
		const db = await createTestDatabase();
		const t = await createTestBroker(
			{ DATABASE_URL: db.url, AI_LOG_BATCH_MS: "0", AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" },
			AI_STACK
		);
		broker = t.broker;
		stop = t.stop;
		const reg = async (email: string) => {
			const u: any = await broker.call("auth.register", { email, password: "correct horse battery", name: "A" });
			return broker.call("auth.resolve", { token: u.accessToken, organizationId: u.organization.id });
		};
		auth = await reg("checks-owner@example.com");
		otherAuth = await reg("checks-other@example.com");
		await call("secrets.create", { environment: "production", name: "CHECK_KEY", value: KEY });
		provider = await call("ai-providers.create", { name: "up", base_url: base, api_key_secret: "CHECK_KEY" });
		dead = await call("ai-providers.create", { name: "dead", base_url: "http://127.0.0.1:9/v1", timeout_ms: 500 });
	}, 60_000);

	afterAll(async () => {
		await stop?.();
		await up.stop();
	});

	beforeEach(() => up.reset());

	test("a working provider tests ok with its latency and model count, sending its real key", async () => {
		up.requiredKey = KEY;
		up.listed = [{ id: "m-1" }, { id: "m-2" }];
		const r = await call("ai-providers.test", { id: provider.id });
		expect(r).toMatchObject({ ok: true, models: 2 });
		expect(r.latencyMs).toBeGreaterThanOrEqual(0);
		expect(up.requests.at(-1)!.authorization).toBe(`Bearer ${KEY}`);
	});

	test("a refused key and an unreachable host test as failures that name why, never the key", async () => {
		up.requiredKey = "sk-some-other-key";
		const refused = await call("ai-providers.test", { id: provider.id });
		expect(refused).toMatchObject({ ok: false, error: { kind: "client_error", status: 401 } });
		expect(refused.error.message).toMatch(/refused the request \(401\)/);
		expect(JSON.stringify(refused)).not.toContain(KEY);
		const unreachable = await call("ai-providers.test", { id: dead.id });
		expect(unreachable).toMatchObject({ ok: false, error: { kind: "connection" } });
	});

	test("another organization's provider is a 404", async () => {
		await expect(call("ai-providers.test", { id: provider.id }, otherAuth)).rejects.toMatchObject({ code: 404 });
		await expect(call("ai-providers.upstreamModels", { id: provider.id }, otherAuth)).rejects.toMatchObject({
			code: 404
		});
	});

	test("the upstream's models are listed with their context size, and a failing list is a 502", async () => {
		up.listed = [{ id: "big-model", context_length: 131072 }, { id: "small-model" }];
		const r = await call("ai-providers.upstreamModels", { id: provider.id });
		expect(r.models).toEqual([{ id: "big-model", context_window: 131072 }, { id: "small-model" }]);
		await expect(call("ai-providers.upstreamModels", { id: dead.id })).rejects.toMatchObject({ code: 502 });
	});

	test("importing deploys the chosen models in one go; importing again skips those already there", async () => {
		const models = [
			{ provider_model: "big-model", context_window: 131072, capabilities: { tools: true } },
			{ provider_model: "small-model", name: "small" }
		];
		expect(await call("ai-providers.importModels", { id: provider.id, models })).toEqual({
			created: 2,
			skipped: 0
		});
		expect(await call("ai-providers.importModels", { id: provider.id, models })).toEqual({
			created: 0,
			skipped: 2
		});
		const rows = await call("ai-deployments.find", { query: { provider_id: provider.id } });
		expect(rows.map((d: any) => [d.name, d.provider_model, d.context_window, d.capabilities]).sort()).toEqual([
			["big-model", "big-model", 131072, { tools: true }],
			["small", "small-model", null, {}]
		]);
		// The new names are usable at once.
		const names = (await call("ai.models", {})).map((m: any) => m.id);
		expect(names).toEqual(expect.arrayContaining(["big-model", "small"]));
		await expect(
			call("ai-providers.importModels", { id: provider.id, models: [{ provider_model: "" }] })
		).rejects.toMatchObject({ code: 422 });
		await expect(
			call("ai-providers.importModels", { id: provider.id, models: [{ provider_model: "x" }] }, otherAuth)
		).rejects.toMatchObject({ code: 404 });
	});

	test("health: unknown before traffic, cooling after three failures, per deployment of the organization", async () => {
		const d = await call("ai-deployments.create", { provider_id: dead.id, name: "offline", provider_model: "x" });
		let h = await call("ai.providerHealth", {});
		expect(h.replicas).toBe(1);
		expect(h.deployments.find((x: any) => x.deploymentId === d.id)).toMatchObject({
			status: "unknown",
			providerId: dead.id
		});
		for (let i = 0; i < 3; i++)
			await call("ai.complete", { model: "offline", ...ask("hi") }).catch(() => undefined);
		h = await call("ai.providerHealth", {});
		const row = h.deployments.find((x: any) => x.deploymentId === d.id);
		expect(row.status).toBe("cooling");
		expect(new Date(row.coolingUntil).getTime()).toBeGreaterThan(Date.now());
		// Another organization sees none of it.
		expect((await call("ai.providerHealth", {}, otherAuth)).deployments).toEqual([]);
	});
});
