// execution's AI steps against the scripted OpenAI-compatible upstream: an ai_completion step renders and completes
// a managed prompt as the execution-runs service for the organization (no user is there when a replica resumes a
// run); the step's output is the answer. A prompt that does not exist fails the step at once (a 4xx is not retried);
// an agent step runs the agent as a service for the organization; an agent run that ends failed fails its step.
import { describeWith, createTestDatabase } from "../helpers/infra";
import { createTestBroker, as } from "../helpers/broker";
import { FakeOpenAI } from "../helpers/fake-openai";
import { AI_STACK } from "../helpers/ai";
import { runPlan as run } from "../helpers/planning";
import type { AuthInfo } from "../../lib/permissions";

jest.setTimeout(90_000);

const FILES = [
	...AI_STACK,
	"services/ai/agent-runs.service.ts",
	"services/prompts/prompts.service.ts",
	"services/prompts/executions.service.ts",
	"services/planning/plans.service.ts",
	"services/execution/runs.service.ts"
];

describeWith(["postgres"])("execution: AI completion and agent steps", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let owner: AuthInfo;
	const up = new FakeOpenAI();
	const call = (action: string, params: object): Promise<any> => t.broker.call(action, params, as(owner));
	const runPlan = (title: string, steps: object[]) => run(call, title, steps);

	beforeAll(async () => {
		const base = await up.start();
		db = await createTestDatabase();
		t = await createTestBroker(
			{ DATABASE_URL: db.url, AI_LOG_BATCH_MS: "0", AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" },
			FILES
		);
		const o: any = await t.broker.call("auth.register", {
			email: "exec-ai@example.com",
			password: "correct horse battery",
			name: "O"
		});
		owner = await t.broker.call("auth.resolve", { token: o.accessToken, organizationId: o.organization.id });
		await call("secrets.create", { environment: "production", name: "KEY", value: "sk-exec-1" });
		const p = await call("ai-providers.create", { name: "p", base_url: base, api_key_secret: "KEY" });
		await call("ai-deployments.create", {
			provider_id: p.id,
			name: "smart",
			provider_model: "a-smart",
			input_price: 3,
			output_price: 15
		});
		await call("prompts.create", {
			name: "release-notes",
			messages: [{ role: "user", content: "Write notes for {{ version }}" }],
			variables: [{ name: "version", type: "string" }],
			model_settings: { model: "smart" },
			label: "production"
		});
	}, 90_000);

	afterAll(async () => {
		await t?.stop();
		await up.stop();
		await db?.drop();
	});

	test("a prompt step completes the prompt as the service for the organization; its answer is kept", async () => {
		const d = await runPlan("AI plan", [
			{
				kind: "ai_completion",
				title: "notes",
				config: { prompt: "release-notes", variables: { version: "1.2.0" } }
			}
		]);
		expect(d.run).toMatchObject({ status: "completed", outcome: "succeeded" });
		expect(d.steps[0].output.completion.choices[0].message.content).toBe("echo(a-smart): Write notes for 1.2.0");
		expect(up.requests.filter(r => r.path === "/v1/chat/completions")).toHaveLength(1);
		// The step sent its key: sent again (its replica died before recording the answer), the prompt is not
		// completed again and the first answer comes back.
		const again = await call("prompts.complete", {
			name: "release-notes",
			variables: { version: "1.2.0" },
			subject: `execution:${d.run.id}:0`,
			idempotency_key: `${d.run.id}:0`
		});
		expect(again.completion).toEqual(d.steps[0].output.completion);
		expect(up.requests.filter(r => r.path === "/v1/chat/completions")).toHaveLength(1);
	});

	test("a prompt or an agent run asked again with one idempotency key does the work once, per organization", async () => {
		const completions = () => up.requests.filter(r => r.path === "/v1/chat/completions").length;
		const before = completions();
		const prompt = { name: "release-notes", variables: { version: "2.0.0" }, idempotency_key: "k-prompt" };
		const first = await call("prompts.complete", prompt);
		expect(await call("prompts.complete", prompt)).toEqual(first);
		expect(completions()).toBe(before + 1);

		const agent = { model: "smart", prompt: "Plan the release", idempotency_key: "k-agent" };
		const run = await call("ai-agent-runs.start", agent);
		const again = await call("ai-agent-runs.start", agent);
		expect(again.id).toBe(run.id);
		expect(completions()).toBe(before + 2);

		// Another organization's call with the same key is its own: it has no such prompt.
		const o: any = await t.broker.call("auth.register", {
			email: "exec-ai-other@example.com",
			password: "correct horse battery",
			name: "P"
		});
		const other = await t.broker.call("auth.resolve", { token: o.accessToken, organizationId: o.organization.id });
		await expect(t.broker.call("prompts.complete", prompt, as(other as AuthInfo))).rejects.toMatchObject({
			code: 404
		});
	});

	// The run is started by the execution service and goes on as the ai's agent-runs service for the organization,
	// with the permissions execution proved: its model turn reaches the upstream, and the step keeps the run.
	test("an agent step runs the agent as a service for the organization; the run's answer is the step's output", async () => {
		const before = up.requests.filter(r => r.path === "/v1/chat/completions").length;
		const d = await runPlan("Agent plan", [
			{ kind: "agent_run", title: "agent", config: { agent: "smart", input: "Plan the rollout", retries: 0 } }
		]);
		expect(d.steps[0].error ?? null).toBeNull();
		expect(d.run).toMatchObject({ status: "completed", outcome: "succeeded" });
		expect(d.steps[0].output).toMatchObject({ status: "completed" });
		expect(up.requests.filter(r => r.path === "/v1/chat/completions").length).toBe(before + 1);
	});

	test("an agent run started again with its key while it still runs is followed, not started twice", async () => {
		const completions = () => up.requests.filter(r => r.path === "/v1/chat/completions").length;
		const before = completions();
		up.set("a-smart", { delayMs: 1500 });
		try {
			const agent = { model: "smart", prompt: "Plan slowly", idempotency_key: "k-agent-running" };
			const [first, second] = await Promise.all([
				call("ai-agent-runs.start", agent),
				new Promise(r => setTimeout(r, 300)).then(() => call("ai-agent-runs.start", agent))
			]);
			expect(second.id).toBe(first.id);
			expect(second).toMatchObject({ status: "completed" });
			expect(completions()).toBe(before + 1);
		} finally {
			up.set("a-smart", {});
		}
	});

	test("an agent step whose run ends failed fails, with the agent's error", async () => {
		const d = await runPlan("Agent plan, no such model", [
			{ kind: "agent_run", title: "agent", config: { agent: "no-such-model", input: "Plan", retries: 0 } }
		]);
		expect(d.run).toMatchObject({ status: "failed", outcome: "failed" });
		expect(d.steps[0].error).toMatch(/no-such-model|the agent run failed: /);
	});

	test("a step naming a prompt that does not exist fails at once, naming it", async () => {
		const d = await runPlan("Missing prompt", [{ kind: "ai_completion", title: "x", config: { prompt: "nope" } }]);
		expect(d.run.status).toBe("failed");
		expect(d.steps[0]).toMatchObject({ status: "failed", attempts: 1 });
		expect(d.steps[0].error).toMatch(/nope|not found/i);
	});
});
