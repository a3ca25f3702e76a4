// Plans generated from a goal, against a scripted model (a local OpenAI-compatible server): the caller's readable
// knowledge articles are offered in the prompt and linked to the tasks that used them; the plan, its tasks and
// planning.task.generated are written together; a bad answer is a 502 naming what was wrong and writes nothing; an
// article the caller cannot read is never offered nor accepted.
import { describeWith } from "../helpers/infra";
import { AI_STACK } from "../helpers/ai";
import { knowledgeWorld, KNOWLEDGE_FILES } from "../knowledge/setup";
import { ScriptedModel } from "../ai/agent-model";
import type { AuthInfo } from "../../lib/permissions";

jest.setTimeout(60_000);

const FILES = [
	...new Set([
		...KNOWLEDGE_FILES,
		...AI_STACK,
		"services/prompts/prompts.service.ts",
		"services/prompts/executions.service.ts",
		"services/planning/states.service.ts",
		"services/planning/entities.service.ts",
		"services/planning/plans.service.ts"
	])
];
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

describeWith(["postgres"])("planning: a plan generated from a goal", () => {
	let w: Awaited<ReturnType<typeof knowledgeWorld>>;
	const model = new ScriptedModel();
	let org: string, owner: AuthInfo, member: AuthInfo, insider: AuthInfo, stranger: AuthInfo;
	let open: { id: string; title: string }, closed: { id: string; title: string };
	const goal = "Rotate the deployment keys of the billing service";

	// What the model was offered: the article ids in the last prompt it got.
	const offered = (body: any) => [...JSON.stringify(body.messages).matchAll(UUID)].map(m => m[0]);
	const answer = (over: Record<string, unknown> = {}) => ({
		content: JSON.stringify({
			title: "Key rotation",
			steps: [
				{ kind: "manual_approval", title: "Approve the rotation", config: { message: "ok?" } },
				{ kind: "ai_completion", title: "Draft the notice", config: { prompt: "notice" } }
			],
			tasks: [
				{ title: "Inventory the keys", priority: "high", article_ids: [open.id] },
				{ title: "Rotate in staging", description: "then production", estimate: 3, article_ids: [] }
			],
			...over
		})
	});
	const counts = async () => {
		const { rows } = await w.sql.query(
			`SELECT (SELECT count(*) FROM planning_plans)::int AS plans,
			        (SELECT count(*) FROM planning_entities)::int AS entities,
			        (SELECT count(*) FROM outbox WHERE channel = 'planning.events')::int AS events`
		);
		return rows[0];
	};
	const generate = (params: object, who: AuthInfo = member) =>
		w.call("planning-plans.generate", { goal, model: "planner", ...params }, who);

	beforeAll(async () => {
		const base = await model.start();
		w = await knowledgeWorld({ AI_LOG_BATCH_MS: "0", AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" }, FILES);
		org = await w.organization("acme");
		owner = await w.principal(org, "owner");
		member = await w.principal(org, "member");
		const secret = await w.team(org, "security");
		insider = await w.principal(org, "member", [secret]);
		stranger = await w.principal(await w.organization("other"), "owner");

		const provider = await w.call("ai-providers.create", { name: "scripted", base_url: base }, owner);
		for (const name of ["planner", "broken", "cheater", "custom"])
			await w.call(
				"ai-deployments.create",
				{ provider_id: provider.id, name, provider_model: name, input_price: 1, output_price: 2 },
				owner
			);
		model.script("planner", () => answer());

		const pub = await w.call("knowledge-categories.create", { name: "Runbooks" }, owner);
		const sec = await w.call("knowledge-categories.create", { name: "Security" }, owner);
		await w.call(
			"knowledge-categories.setGrants",
			{ id: sec.id, grants: [{ team_id: secret, access: "read" }] },
			owner
		);
		const article = async (category: string, title: string, body: string) => {
			const a = await w.call(
				"knowledge-articles.create",
				{ category_id: category, title, body, status: "published" },
				owner
			);
			await w.indexed(a.id, a.revision);
			return { id: a.id as string, title };
		};
		open = await article(pub.id, "Deployment keys runbook", "How to rotate the deployment keys of a service.");
		closed = await article(sec.id, "Billing master key vault", "The billing deployment keys live in the vault.");
	});
	afterAll(async () => {
		await w?.stop();
		await model.stop();
	});

	test("creates the plan and its tasks, linked to the articles they used, and publishes planning.task.generated", async () => {
		const project = await w.call("planning-entities.create", { kind: "project", title: "Billing" }, member);
		const before = model.requests.length;
		const r = await generate({ project_id: project.id, options: { max_tasks: 5 } });

		const sent = model.requests[before];
		expect(sent.response_format).toMatchObject({ type: "json_schema", json_schema: { name: "plan" } });
		expect(JSON.stringify(sent.messages)).toContain(goal);
		expect(JSON.stringify(sent.messages)).toContain("Project: Billing");
		expect(offered(sent)).toEqual([open.id]);

		expect(r.plan).toMatchObject({ title: "Key rotation", goal, revision: 1, approved_revision: null });
		expect(r.plan.steps.map((s: any) => s.kind)).toEqual(["manual_approval", "ai_completion"]);
		expect(r.tasks).toHaveLength(2);
		expect(r.article_ids).toEqual([open.id]);
		expect(r.articles).toEqual([{ id: open.id, title: open.title }]);
		const stored = await w.call("planning-entities.find", { query: { parent_id: project.id } }, member);
		const byTitle = Object.fromEntries(stored.map((t: any) => [t.title, t]));
		expect(byTitle["Inventory the keys"]).toMatchObject({
			kind: "task",
			article_ids: [open.id],
			fields: { priority: "high" }
		});
		expect(byTitle["Rotate in staging"]).toMatchObject({
			article_ids: [],
			description: "then production",
			fields: { estimate: 3 }
		});
		const backlog = (await w.call("planning-states.find", {}, member)).find((s: any) => s.group === "backlog");
		expect(stored.every((t: any) => t.state_id === backlog.id)).toBe(true);

		const { rows } = await w.sql.query(
			"SELECT payload FROM outbox WHERE channel = 'planning.events' AND payload->>'type' = 'planning.task.generated'"
		);
		expect(rows.map(x => x.payload)).toEqual([
			expect.objectContaining({
				organizationId: org,
				planId: r.plan.id,
				taskCount: 2,
				taskIds: r.tasks.map((t: any) => t.id),
				articleIds: [open.id]
			})
		]);
		// Each task records its plan, in its own answer and as any entity reads; the plan lists its tasks in order.
		expect(r.tasks.map((t: any) => t.plan_id)).toEqual([r.plan.id, r.plan.id]);
		expect((await w.call("planning-entities.get", { id: r.tasks[0].id }, member)).plan_id).toBe(r.plan.id);
		const listed = await w.call("planning-plans.tasks", { id: r.plan.id }, member);
		expect(listed.map((t: any) => t.title)).toEqual(["Inventory the keys", "Rotate in staging"]);
		expect(listed.every((t: any) => t.kind === "task" && t.plan_id === r.plan.id)).toBe(true);
		expect((await w.call("planning-entities.get", { id: project.id }, member)).plan_id).toBeNull();
		await expect(w.call("planning-plans.tasks", { id: r.plan.id }, stranger)).rejects.toMatchObject({ code: 404 });
		// A task is created through the one entity write: planning.entity.created for each, as for one made by hand.
		const created = await w.sql.query(
			"SELECT payload FROM outbox WHERE channel = 'planning.events' AND payload->>'type' = 'planning.entity.created'"
		);
		for (const t of r.tasks)
			expect(created.rows.map(x => x.payload)).toContainEqual(
				expect.objectContaining({ entityId: t.id, kind: "task", title: t.title })
			);
		// The organization sees the plan; another does not.
		expect((await w.call("planning-plans.get", { id: r.plan.id }, member)).id).toBe(r.plan.id);
		await expect(w.call("planning-plans.get", { id: r.plan.id }, stranger)).rejects.toMatchObject({ code: 404 });
	});

	test("a malformed answer is a 502 naming what was wrong, and nothing is written", async () => {
		const before = await counts();
		const cases: [unknown, RegExp][] = [
			[{ content: "Sure! Here is your plan: step one…" }, /answer is not JSON/],
			[answer({ tasks: [] }), /answer\.tasks/],
			[answer({ tasks: [{ article_ids: [] }] }), /answer\.tasks\[0\]\.title/],
			[
				answer({ steps: [{ kind: "http_webhook", title: "Call", config: {} }] }),
				/answer\.steps\[0\]\.config\.url/
			],
			[answer({ steps: [{ kind: "teleport", title: "Go", config: {} }] }), /answer\.steps\[0\]\.kind/],
			[answer({ extra: true }), /answer\.extra/],
			[
				answer({ tasks: Array.from({ length: 4 }, (_, i) => ({ title: `t${i}`, article_ids: [] })) }),
				/4 tasks, more than the 3/
			]
		];
		for (const [turn, message] of cases) {
			model.script("broken", () => turn as { content: string });
			const err = await generate({ model: "broken", options: { max_tasks: 3 } }).catch(e => e);
			expect(err).toMatchObject({ code: 502, type: "BAD_MODEL_ANSWER" });
			expect(err.message).toMatch(message);
			expect(err.data[0].field).toMatch(/^answer/);
		}
		expect(await counts()).toEqual(before);
	});

	test("an article the caller cannot read is never offered, and citing it is refused", async () => {
		const before = await counts();
		let sent: any;
		model.script("cheater", body => {
			sent = body;
			return answer({ tasks: [{ title: "Open the vault", article_ids: [closed.id] }] });
		});
		const err = await generate({ model: "cheater" }).catch(e => e);
		expect(offered(sent)).toEqual([open.id]);
		expect(JSON.stringify(sent.messages)).not.toContain(closed.title);
		expect(err).toMatchObject({ code: 502 });
		expect(err.data[0]).toMatchObject({ field: "answer.tasks[0].article_ids[0]" });
		expect(await counts()).toEqual(before);

		// A member of the team the category is granted to is offered it, and may link it.
		const r = await generate({ model: "cheater" }, insider);
		expect(offered(sent).sort()).toEqual([open.id, closed.id].sort());
		expect(r.tasks[0].article_ids).toEqual([closed.id]);
	});

	test("the organization's own template replaces the built-in one, and its model is used", async () => {
		await w.call(
			"prompts.create",
			{
				name: "team-planner",
				messages: [
					{ role: "system", content: "Plan as our team does. JSON only." },
					{
						role: "user",
						content:
							"{{ goal }} ({{ max_tasks }} tasks max){% for a in articles %} [{{ a.id }}]{% endfor %}"
					}
				],
				variables: [
					{ name: "goal", type: "string" },
					{ name: "project", type: "string", required: false },
					{ name: "articles", type: "list" },
					{ name: "max_tasks", type: "number" },
					{ name: "step_kinds", type: "string", required: false }
				],
				model_settings: { model: "custom", temperature: 0.2 },
				label: "production"
			},
			owner
		);
		let sent: any;
		model.script("custom", body => {
			sent = body;
			return answer();
		});
		const r = await w.call("planning-plans.generate", { goal, prompt: { name: "team-planner" } }, member);
		expect(sent.messages[0].content).toBe("Plan as our team does. JSON only.");
		expect(sent.messages[1].content).toBe(`${goal} (10 tasks max) [${open.id}]`);
		expect(sent.temperature).toBe(0.2);
		expect(r.tasks).toHaveLength(2);
	});

	test("bad input is a 422 naming the field; a viewer may not generate", async () => {
		const theirs = await w.call("planning-entities.create", { kind: "project", title: "Theirs" }, stranger);
		const task = await w.call("planning-entities.create", { kind: "task", title: "Not a project" }, member);
		for (const [params, field] of [
			[{ project_id: theirs.id }, "project_id"],
			[{ project_id: task.id }, "project_id"],
			[{ model: undefined }, "model"],
			[{ goal: "" }, "goal"],
			[{ options: { max_tasks: 0 } }, "options.max_tasks"],
			[{ prompt: { name: "no-such-template" } }, undefined]
		] as [object, string | undefined][]) {
			const err = await generate(params).catch(e => e);
			expect(err.code).toBeGreaterThanOrEqual(400);
			expect(err.code).toBeLessThan(500);
			if (field) expect(err.data.map((d: any) => d.field)).toContain(field);
		}
		const viewer = await w.principal(org, "viewer");
		await expect(generate({}, viewer)).rejects.toMatchObject({ code: 403 });
	});
});
