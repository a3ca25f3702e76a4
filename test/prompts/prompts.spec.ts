// prompts on real PostgreSQL, through the broker and the gateway: templates and typed variables, immutable
// versions, labels (protected ones need prompts:manage), diff, rollback, shared templates and organization overrides
// that never cross organizations, render and complete against a fake OpenAI upstream, and /v1/chat/completions with
// a prompt reference. Permissions, error shape and OpenAPI: test/platform/conformance.spec.ts.
import crypto from "crypto";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { as } from "../helpers/broker";
import { connect, http, Member, register, startGateway, TestGateway } from "../helpers/gateway";
import { FakeOpenAI } from "../helpers/fake-openai";
import { waitUntil } from "../helpers/wait";
import { permissionTable } from "../../lib/authz";
import { getDb } from "../../lib/db";
import type { AuthInfo, Role } from "../../lib/permissions";

jest.setTimeout(60_000);

const FILES = [
	"services/secrets/secrets.service.ts",
	"services/ai/ai.service.ts",
	"services/ai/providers.service.ts",
	"services/ai/deployments.service.ts",
	"services/ai/presets.service.ts",
	"services/ai/routing.service.ts",
	"services/ai/fallbacks.service.ts",
	"services/ai/limits.service.ts",
	"services/prompts/prompts.service.ts",
	"services/prompts/executions.service.ts",
	"services/prompts/experiments.service.ts"
];

const authAs = (m: Member, role: Role): AuthInfo => ({
	kind: "session",
	userId: m.user.id,
	organizationId: m.organization.id,
	role,
	permissions: [...permissionTable().byRole[role]]
});

const REVIEW = {
	messages: [
		{ role: "system", content: "You review {{ language }} code{% if strict %}, strictly{% endif %}." },
		{ role: "user", content: "Review:{% for f in files %} {{ f }}{% endfor %}" }
	],
	variables: [
		{ name: "language", type: "string", maxLength: 20 },
		{ name: "strict", type: "boolean", default: false },
		{ name: "files", type: "list", maxLength: 5 }
	],
	model_settings: { model: "smart", temperature: 0.2 }
};

describeWith(["postgres"])("prompts (in-process gateway, real PostgreSQL)", () => {
	const up = new FakeOpenAI();
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	let broker: ServiceBroker;
	let a: Member, b: Member;
	let owner: AuthInfo, member: AuthInfo, admin: AuthInfo, viewer: AuthInfo, bOwner: AuthInfo;
	const call = (action: string, params: object, auth: AuthInfo) => broker.call<any, any>(action, params, as(auth));
	const rejects = (p: Promise<unknown>, code: number, field?: string) =>
		expect(p).rejects.toMatchObject({ code, ...(field ? { data: [expect.objectContaining({ field })] } : {}) });

	beforeAll(async () => {
		const base = await up.start();
		db = await createTestDatabase();
		gw = await startGateway(
			{
				DATABASE_URL: db.url,
				MASTER_KEY: crypto.randomBytes(32).toString("base64"),
				AI_LOG_BATCH_MS: "0",
				AI_ALLOWED_PRIVATE_HOSTS: "127.0.0.1"
			},
			FILES
		);
		broker = gw.broker;
		a = await register(gw.port, "prompts-a@example.com");
		b = await register(gw.port, "prompts-b@example.com");
		[owner, member, admin, viewer, bOwner] = [
			authAs(a, "owner"),
			authAs(a, "member"),
			authAs(a, "admin"),
			authAs(a, "viewer"),
			authAs(b, "owner")
		];
		await call("secrets.create", { environment: "production", name: "KEY", value: "sk-prompts-test-1" }, owner);
		const p = await call("ai-providers.create", { name: "p", base_url: base, api_key_secret: "KEY" }, owner);
		await call(
			"ai-deployments.create",
			{ provider_id: p.id, name: "smart", provider_model: "a-smart", input_price: 3, output_price: 15 },
			owner
		);
	});

	afterAll(async () => {
		await gw?.stop();
		await up.stop();
		await db?.drop();
	});

	test("create makes version 1 and labels it; render binds typed variables and records an execution", async () => {
		const created = await call("prompts.create", { name: "review", ...REVIEW, label: "production" }, member);
		expect(created.template).toMatchObject({
			name: "review",
			shared: false,
			labels: { production: 1 },
			latest_version: 1
		});
		expect(created.labels).toEqual([expect.objectContaining({ name: "production", version: 1, protected: true })]);

		const r = await call(
			"prompts.render",
			{ name: "review", variables: { language: "Go", strict: true, files: ["a.go", "b.go"] }, subject: "u-1" },
			viewer
		);
		expect(r.messages).toEqual([
			{ role: "system", content: "You review Go code, strictly." },
			{ role: "user", content: "Review: a.go b.go" }
		]);
		expect(r).toMatchObject({
			model_settings: { model: "smart", temperature: 0.2 },
			template: { id: created.template.id, name: "review", shared: false },
			version: { number: 1 },
			label: "production"
		});
		const sql = await getDb();
		const exec = (await sql.query("SELECT * FROM prompts_executions WHERE id = $1", [r.execution_id])).rows[0];
		expect(exec).toMatchObject({
			organization_id: a.organization.id,
			kind: "render",
			subject: "u-1",
			success: true
		});
		const events = await waitUntil(
			"prompts.rendered in the outbox",
			async () => (await sql.query("SELECT payload FROM outbox WHERE channel = 'prompts.events'")).rows,
			rows => rows.some(r => r.payload.type === "prompts.rendered")
		);
		expect(events.map(e => e.payload.type)).toEqual(
			expect.arrayContaining(["prompts.template.created", "prompts.version.published", "prompts.label.moved"])
		);
	});

	test("missing or ill-typed variables are a 422 naming the variable, over REST too", async () => {
		await rejects(
			call("prompts.render", { name: "review", variables: { files: [] } }, viewer),
			422,
			"variables.language"
		);
		await rejects(
			call("prompts.render", { name: "review", variables: { language: "Go", files: "a.go" } }, viewer),
			422,
			"variables.files"
		);
		const res = await http(gw.port, "POST", "/api/prompts/render", {
			token: a.accessToken,
			org: a.organization.id,
			body: { name: "review", variables: { language: 7, files: [] } }
		});
		expect(res.status).toBe(422);
		expect(res.body.error.fields).toEqual([
			expect.objectContaining({ field: "variables.language", message: "must be a string" })
		]);
		await rejects(call("prompts.render", { name: "nope", variables: {} }, viewer), 404);
	});

	test("preview renders a draft with sample values, refuses what publish and render refuse, records nothing", async () => {
		const sql = await getDb();
		const counts = async () =>
			(
				await sql.query(
					`SELECT (SELECT count(*) FROM prompts_executions)::int AS executions,
					 (SELECT count(*) FROM outbox WHERE channel = 'prompts.events')::int AS events`
				)
			).rows[0];
		const before = await counts();
		await call(
			"prompts.create",
			{
				name: "signature",
				messages: [{ role: "user", content: "-- the {{ team }} team" }],
				variables: [{ name: "team", type: "string" }],
				label: "production"
			},
			member
		);
		const afterCreate = await counts();
		const preview = (draft: object, auth = viewer) => call("prompts.preview", draft, auth);

		// Unpublished content, its partials from the organization's templates, the model settings echoed.
		const out = await preview({
			...REVIEW,
			messages: [...REVIEW.messages, { role: "user", content: "{% render 'signature', team: language %}" }],
			values: { language: "Rust", files: ["x.rs"] }
		});
		expect(out).toEqual({
			messages: [
				{ role: "system", content: "You review Rust code." },
				{ role: "user", content: "Review: x.rs" },
				{ role: "user", content: "-- the Rust team" }
			],
			model_settings: REVIEW.model_settings
		});
		// Another organization's template is no partial of this one.
		await rejects(
			preview({ messages: [{ role: "user", content: "{% render 'signature', team: 'x' %}" }] }, bOwner),
			422,
			"messages[0].content"
		);

		// A bad sample value names it under `values`; a bad declaration or a message that reads an undeclared
		// variable is refused as publish refuses it.
		await rejects(preview({ ...REVIEW, values: { files: [] } }), 422, "values.language");
		await rejects(preview({ ...REVIEW, values: { language: 7, files: [] } }), 422, "values.language");
		await rejects(preview({ ...REVIEW, values: { language: "Go", files: [], extra: 1 } }), 422, "values.extra");
		await rejects(
			preview({ ...REVIEW, variables: [...REVIEW.variables, { name: "tone", type: "enum" }], values: {} }),
			422,
			"variables[3].values"
		);
		await rejects(preview({ messages: [{ role: "user", content: "Hi {{ who }}" }] }), 422, "messages[0].content");
		await rejects(preview({ messages: [{ role: "user", content: "{% if %}" }] }), 422, "messages[0].content");

		// Hostile templates meet the same sandbox and limits as a render.
		const hostile = (content: string, values: object = { x: {} }) =>
			rejects(
				preview({ messages: [{ role: "user", content }], variables: [{ name: "x", type: "object" }], values }),
				422,
				"messages[0].content"
			);
		await hostile("{{ constructor.constructor }}");
		await hostile("{{ x.constructor.constructor }}");
		await hostile("{{ x.__proto__.polluted }}");
		await hostile("{% include '/etc/passwd' %}");
		await hostile("{% render '../../package.json' %}");
		await hostile("{% for i in (1..100000000) %}a{% endfor %}");
		await hostile("{% assign a = 'x' %}{% for i in (1..40) %}{% assign a = a | append: a %}{% endfor %}{{ a }}");
		expect(Object.prototype).not.toHaveProperty("polluted");

		// Over REST, the field named in the error.
		const res = await http(gw.port, "POST", "/api/prompts/preview", {
			token: a.accessToken,
			org: a.organization.id,
			body: { ...REVIEW, values: { language: "x".repeat(21), files: [] } }
		});
		expect(res.status).toBe(422);
		expect(res.body.error.fields).toEqual([
			expect.objectContaining({ field: "values.language", message: "must be at most 20 characters" })
		]);

		// Not a use: no execution and no event came of any preview.
		expect(await counts()).toEqual(afterCreate);
		expect(afterCreate.executions).toBe(before.executions);
	});

	test("a version that reads an undeclared variable or does not parse is refused when published", async () => {
		const bad = (content: string) =>
			call(
				"prompts.create",
				{ name: `bad-${crypto.randomBytes(3).toString("hex")}`, messages: [{ role: "user", content }] },
				member
			);
		await rejects(bad("Hi {{ who }}"), 422, "messages[0].content");
		await rejects(bad("{{ constructor.constructor }}"), 422, "messages[0].content");
		await rejects(bad("{% if %}"), 422, "messages[0].content");
		await rejects(bad("{{ 'x' | no_such_filter }}"), 422, "messages[0].content");
		const res = await http(gw.port, "POST", "/api/prompts", {
			token: a.accessToken,
			org: a.organization.id,
			body: {
				name: "bad-rest",
				messages: [{ role: "user", content: "{{ x }}" }],
				variables: [{ name: "x", type: "enum" }]
			}
		});
		expect(res.status).toBe(422);
		expect(res.body.error.fields).toEqual([expect.objectContaining({ field: "variables[0].values" })]);
		expect((await call("prompts.list", { search: "bad-" }, viewer)).total).toBe(0);
	});

	test("versions are immutable; diff compares any two; labels move, protected ones only with prompts:manage", async () => {
		const t = (await call("prompts.list", {}, viewer)).rows.find((x: any) => x.name === "review");
		const v2 = await call(
			"prompts.publish",
			{
				id: t.id,
				...REVIEW,
				messages: [
					REVIEW.messages[0],
					{ role: "user", content: "Review carefully:{% for f in files %} {{ f }}{% endfor %}" }
				],
				model_settings: { model: "smart", temperature: 0.5 },
				note: "be careful",
				label: "staging"
			},
			member
		);
		expect(v2).toMatchObject({ number: 2, note: "be careful", labels: ["staging"] });
		// No action changes or removes a version, and the table refuses an update.
		expect(
			broker.registry
				.getActionList({})
				.map((x: any) => x.name)
				.filter((n: string) => /prompts\.(update|remove)Version/.test(n))
		).toEqual([]);
		await expect(
			(await getDb()).query("UPDATE prompts_versions SET note = 'x' WHERE id = $1", [v2.id])
		).rejects.toThrow(/immutable/);

		const d = await call("prompts.diff", { id: t.id, from: 1, to: 2 }, viewer);
		expect(d).toMatchObject({ from: 1, to: 2, changed: true });
		expect(d.messages[0].change).toBe("unchanged");
		expect(d.messages[1].change).toBe("changed");
		expect(d.messages[1].content).toEqual(
			expect.arrayContaining([
				expect.objectContaining({ op: "removed", text: expect.stringContaining("Review:") }),
				expect.objectContaining({ op: "added", text: expect.stringContaining("Review carefully:") })
			])
		);
		expect(d.model_settings).toContainEqual({ key: "temperature", change: "changed", from: 0.2, to: 0.5 });
		expect(d.variables.every((v: any) => v.change === "unchanged")).toBe(true);
		await rejects(call("prompts.diff", { id: t.id, from: 1, to: 9 }, viewer), 422, "to");

		// production is protected: a member cannot move it, nor protect a label; an admin can.
		await rejects(call("prompts.moveLabel", { id: t.id, label: "production", version: 2 }, member), 403);
		await rejects(call("prompts.moveLabel", { id: t.id, label: "qa", version: 2, protected: true }, member), 403);
		await rejects(call("prompts.moveLabel", { id: t.id, label: "staging", version: 1 }, viewer), 403);
		expect(await call("prompts.moveLabel", { id: t.id, label: "canary", version: 2 }, member)).toMatchObject({
			label: { name: "canary", version: 2, protected: false },
			from_version: null
		});
		expect(await call("prompts.moveLabel", { id: t.id, label: "production", version: 2 }, admin)).toMatchObject({
			label: { name: "production", version: 2, protected: true },
			from_version: 1
		});
		const rendered = await call(
			"prompts.render",
			{ name: "review", variables: { language: "Go", files: ["x"] } },
			viewer
		);
		expect(rendered.version.number).toBe(2);
		expect(rendered.messages[1].content).toBe("Review carefully: x");
		// A pinned version and a label other than production.
		expect(
			(
				await call(
					"prompts.render",
					{ name: "review", version: 1, variables: { language: "Go", files: [] } },
					viewer
				)
			).version.number
		).toBe(1);
		await rejects(
			call(
				"prompts.render",
				{ name: "review", label: "nolabel", variables: { language: "Go", files: [] } },
				viewer
			),
			404
		);
		await rejects(
			call("prompts.render", { name: "review", label: "staging", version: 1, variables: {} }, viewer),
			422,
			"version"
		);
	});

	test("rollback moves the label back to where it was, recorded in the label's history", async () => {
		const t = (await call("prompts.list", {}, viewer)).rows.find((x: any) => x.name === "review");
		await rejects(call("prompts.rollback", { id: t.id, label: "production" }, member), 403);
		expect(await call("prompts.rollback", { id: t.id, label: "production" }, admin)).toMatchObject({
			label: { name: "production", version: 1 },
			from_version: 2
		});
		const history = await call("prompts.labelHistory", { id: t.id, label: "production" }, viewer);
		expect(history.map((h: any) => [h.from_version, h.to_version])).toEqual([
			[2, 1],
			[1, 2],
			[null, 1]
		]);
		expect(
			(await call("prompts.render", { name: "review", variables: { language: "Go", files: [] } }, viewer)).version
				.number
		).toBe(1);
		// Unprotected labels roll back with prompts:write.
		await call("prompts.moveLabel", { id: t.id, label: "canary", version: 1 }, member);
		expect((await call("prompts.rollback", { id: t.id, label: "canary" }, member)).label.version).toBe(2);
	});

	test("shared templates: every organization sees one; none changes it; an override stays in its organization", async () => {
		// Only the operator (an internal call, no organization) creates or changes a shared template.
		const shared: any = await broker.call("prompts.createShared", {
			name: "commit-message",
			description: "Conventional commit message",
			messages: [{ role: "user", content: "Write a commit message for: {{ diff }}" }],
			variables: [{ name: "diff", type: "string" }],
			label: "production"
		});
		const sharedId = shared.template.id;
		expect(shared.template).toMatchObject({ shared: true, organization_id: null });
		for (const who of [owner, bOwner]) {
			expect((await call("prompts.list", {}, who)).rows.map((t: any) => t.name)).toContain("commit-message");
			const r = await call("prompts.render", { name: "commit-message", variables: { diff: "fix" } }, who);
			expect(r).toMatchObject({
				template: { id: sharedId, shared: true },
				messages: [{ content: "Write a commit message for: fix" }]
			});
		}
		// Not even an organization's owner changes it.
		await rejects(
			call("prompts.publish", { id: sharedId, messages: [{ role: "user", content: "x" }] }, owner),
			403
		);
		await rejects(call("prompts.moveLabel", { id: sharedId, label: "production", version: 1 }, owner), 403);
		await rejects(call("prompts.update", { id: sharedId, description: "mine" }, owner), 403);
		await rejects(call("prompts.remove", { id: sharedId }, owner), 403);
		await rejects(
			call("prompts.create", { name: "commit-message", messages: [{ role: "user", content: "x" }] }, owner),
			409,
			"name"
		);
		const res = await http(gw.port, "POST", `/api/prompts/${sharedId}/versions`, {
			token: a.accessToken,
			org: a.organization.id,
			body: { messages: [{ role: "user", content: "x" }] }
		});
		expect(res.status).toBe(403);

		// Organization A overrides it; B keeps the shared one and never sees A's.
		const o = await call(
			"prompts.override",
			{
				id: sharedId,
				messages: [{ role: "user", content: "A-style commit for: {{ diff }}" }],
				variables: [{ name: "diff", type: "string" }]
			},
			member
		);
		expect(o.template).toMatchObject({
			name: "commit-message",
			shared: false,
			overrides_template_id: sharedId,
			labels: { production: 1 }
		});
		const ra = await call("prompts.render", { name: "commit-message", variables: { diff: "fix" } }, viewer);
		expect(ra).toMatchObject({
			template: { id: o.template.id, overrides_template_id: sharedId },
			messages: [{ content: "A-style commit for: fix" }]
		});
		const rb = await call("prompts.render", { name: "commit-message", variables: { diff: "fix" } }, bOwner);
		expect(rb).toMatchObject({
			template: { id: sharedId },
			messages: [{ content: "Write a commit message for: fix" }]
		});
		const listA = (await call("prompts.list", {}, owner)).rows.filter((t: any) => t.name === "commit-message");
		expect(listA.map((t: any) => t.id)).toEqual([o.template.id]);
		const listB = (await call("prompts.list", {}, bOwner)).rows.filter((t: any) => t.name === "commit-message");
		expect(listB.map((t: any) => t.id)).toEqual([sharedId]);
		for (const action of ["get", "versions", "labels", "labelHistory"])
			await rejects(call(`prompts.${action}`, { id: o.template.id }, bOwner), 404);
		await rejects(call("prompts.diff", { id: o.template.id, from: 1, to: 1 }, bOwner), 404);
		await rejects(
			call("prompts.publish", { id: o.template.id, messages: [{ role: "user", content: "x" }] }, bOwner),
			404
		);
		await rejects(call("prompts.override", { id: sharedId }, member), 409);
		// A's own templates are A's alone.
		const mine = (await call("prompts.list", {}, owner)).rows.find((t: any) => t.name === "review");
		await rejects(call("prompts.get", { id: mine.id }, bOwner), 404);
		await rejects(
			call("prompts.render", { name: "review", variables: { language: "Go", files: [] } }, bOwner),
			404
		);

		// The operator publishes a new shared version: B sees it at once, A keeps its override.
		await broker.call("prompts.publishShared", {
			name: "commit-message",
			messages: [{ role: "user", content: "v2 commit for: {{ diff }}" }],
			variables: [{ name: "diff", type: "string" }],
			label: "production"
		});
		expect(
			(await call("prompts.render", { name: "commit-message", variables: { diff: "y" } }, bOwner)).messages[0]
				.content
		).toBe("v2 commit for: y");
		expect(
			(await call("prompts.render", { name: "commit-message", variables: { diff: "y" } }, owner)).messages[0]
				.content
		).toBe("A-style commit for: y");
		// Removing the override shows the shared template again.
		await call("prompts.remove", { id: o.template.id }, admin);
		expect(
			(await call("prompts.render", { name: "commit-message", variables: { diff: "y" } }, owner)).template.id
		).toBe(sharedId);
	});

	test("partials are other templates of the organization, by name", async () => {
		await call(
			"prompts.create",
			{ name: "house-style", messages: [{ role: "system", content: "Be terse." }], label: "production" },
			member
		);
		await call(
			"prompts.create",
			{
				name: "with-style",
				messages: [{ role: "system", content: "{% render 'house-style' %} Topic: {{ t }}" }],
				variables: [{ name: "t", type: "string" }],
				label: "production"
			},
			member
		);
		const r = await call("prompts.render", { name: "with-style", variables: { t: "x" } }, viewer);
		expect(r.messages[0].content).toBe("Be terse. Topic: x");
		// Another organization's template is no partial of B's.
		await call(
			"prompts.create",
			{
				name: "b-uses-a",
				messages: [{ role: "user", content: "{% render 'house-style' %}" }],
				label: "production"
			},
			bOwner
		);
		await rejects(call("prompts.render", { name: "b-uses-a" }, bOwner), 422, "messages[0].content");
	});

	test("complete renders, calls ai.complete as the caller, and the completion log names template and version", async () => {
		const r = await call(
			"prompts.complete",
			{ name: "review", variables: { language: "Go", files: ["m.go"] } },
			member
		);
		expect(r.completion.choices[0].message.content).toBe("echo(a-smart): Review: m.go");
		expect(up.requests.at(-1)!.body).toMatchObject({ temperature: 0.2, messages: r.messages });
		expect(r.version.number).toBe(1);
		const sql = await getDb();
		const exec = (await sql.query("SELECT * FROM prompts_executions WHERE id = $1", [r.execution_id])).rows[0];
		expect(exec).toMatchObject({ kind: "complete", success: true, prompt_tokens: expect.any(Number) });
		const { cost, ...log } = (
			await sql.query("SELECT prompt, user_id, cost FROM ai_completion_logs WHERE request_id = $1", [
				exec.request_id
			])
		).rows[0];
		expect(log).toEqual({
			prompt: { templateId: r.template.id, versionId: r.version.id, variantId: null },
			user_id: a.user.id
		});
		// The execution records what the completion cost, as its log row says.
		expect(Number(cost)).toBeGreaterThan(0);
		expect(Number(exec.cost)).toBe(Number(cost));
		// A viewer may render but not complete; a version without a model needs one.
		await rejects(
			call("prompts.complete", { name: "review", variables: { language: "Go", files: [] } }, viewer),
			403
		);
		await rejects(call("prompts.complete", { name: "house-style" }, member), 422, "model");
		expect(
			(await call("prompts.complete", { name: "house-style", model: "smart" }, member)).completion.object
		).toBe("chat.completion");
	});

	test("stream renders and streams ai.stream's NDJSON over the socket; the execution is recorded when it ends", async () => {
		const socket = await connect(gw.port, { token: a.accessToken, organizationId: a.organization.id });
		type Streamed = { ack: any; requestId?: string; items: any[]; end?: boolean; error?: any };
		// Starts a stream over the socket's generic protocol and collects its items until it ends or fails.
		const streamed = (id: string, params: object) =>
			new Promise<Streamed>(resolve => {
				const out: Streamed = { ack: undefined, items: [] };
				const done = () => {
					socket.off("stream:start", onStart);
					socket.off("stream:data", onData).off("stream:end", onEnd).off("stream:error", onError);
					resolve(out);
				};
				const onStart = (m: any) => m.id === id && (out.requestId = m.requestId);
				const onData = (m: any) => m.id === id && out.items.push(m.data);
				const onEnd = (m: any) => m.id === id && ((out.end = true), done());
				const onError = (m: any) => m.id === id && ((out.error = m), done());
				socket.on("stream:start", onStart);
				socket.on("stream:data", onData).on("stream:end", onEnd).on("stream:error", onError);
				socket.emit("stream", { id, action: "prompts.stream", params }, (ack: any) => {
					out.ack = ack;
					if (ack?.error) done();
				});
			});
		const sql = await getDb();
		try {
			const out = await streamed("p-1", { name: "review", variables: { language: "Go", files: ["s.go"] } });
			expect(out).toMatchObject({ ack: { data: { id: "p-1" } }, end: true });
			const chunks = out.items.filter(i => i.choices);
			expect(chunks.length).toBeGreaterThan(1);
			expect(chunks.map(c => c.choices[0].delta?.content ?? "").join("")).toBe("echo(a-smart): Review: s.go");
			const done = out.items.at(-1);
			expect(done).toMatchObject({
				done: true,
				usage: { prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) },
				prompt: { template: { name: "review" }, version: { number: 1 }, label: "production" }
			});
			expect(up.requests.at(-1)!.body).toMatchObject({ stream: true, temperature: 0.2 });

			const exec = (await sql.query("SELECT * FROM prompts_executions WHERE id = $1", [done.prompt.execution_id]))
				.rows[0];
			expect(exec).toMatchObject({
				organization_id: a.organization.id,
				user_id: a.user.id,
				kind: "complete",
				success: true,
				request_id: done.requestId,
				prompt_tokens: done.usage.prompt_tokens,
				completion_tokens: done.usage.completion_tokens,
				latency_ms: expect.any(Number)
			});
			const log = (
				await sql.query("SELECT prompt, stream, cost FROM ai_completion_logs WHERE request_id = $1", [
					done.requestId
				])
			).rows[0];
			expect(log).toMatchObject({
				stream: true,
				prompt: { templateId: done.prompt.template.id, versionId: done.prompt.version.id, variantId: null }
			});
			expect(Number(log.cost)).toBeGreaterThan(0);
			expect(Number(exec.cost)).toBe(Number(log.cost));

			// A stream the upstream breaks off ends in an error line, recorded as a failed execution.
			up.set("a-smart", { cutAfterChunks: 2, chunkDelayMs: 30 });
			const broken = await streamed("p-2", {
				name: "review",
				variables: { language: "Go", files: ["a.go", "b.go", "c.go"] }
			});
			expect(broken.ack).toEqual({ data: { id: "p-2" } });
			expect(broken.items.at(-1)).toMatchObject({ error: { type: "upstream_error" } });
			const failed = await sql.query("SELECT * FROM prompts_executions WHERE request_id = $1", [
				broken.requestId
			]);
			expect(failed.rows).toEqual([expect.objectContaining({ kind: "complete", success: false })]);
			expect(failed.rows[0].error).toMatch(/stream interrupted/);
			expect(broken.items.some(i => i.done)).toBe(false);

			// Cancelled after its first item: the upstream request stops (its log row says so) and the execution is
			// recorded as not successful.
			up.set("a-smart", { chunkDelayMs: 300 });
			const cancelled = await new Promise<Streamed>(resolve => {
				const out: Streamed = { ack: undefined, items: [] };
				socket.on("stream:start", (m: any) => m.id === "p-4" && (out.requestId = m.requestId));
				const onData = (m: any) => {
					if (m.id !== "p-4") return;
					out.items.push(m.data);
					socket.off("stream:data", onData);
					socket.emit("cancel", { id: "p-4" }, () => resolve(out));
				};
				socket.on("stream:data", onData);
				socket.emit(
					"stream",
					{
						id: "p-4",
						action: "prompts.stream",
						params: { name: "review", variables: { language: "Go", files: ["a", "b", "c", "d", "e"] } }
					},
					() => undefined
				);
			});
			const stopped = await waitUntil(
				"the cancelled stream's execution and log row",
				async () => ({
					exec: (
						await sql.query("SELECT * FROM prompts_executions WHERE request_id = $1", [cancelled.requestId])
					).rows,
					log: (
						await sql.query("SELECT status FROM ai_completion_logs WHERE request_id = $1", [
							cancelled.requestId
						])
					).rows
				}),
				r => r.exec.length > 0 && r.log.length > 0
			);
			expect(stopped.exec).toEqual([expect.objectContaining({ kind: "complete", success: false })]);
			expect(stopped.exec[0].error).toMatch(/cancelled/);
			expect(stopped.log).toEqual([{ status: "cancelled" }]);
			up.set("a-smart", {});

			// Refused before anything streams: a missing variable, named.
			const refused = await streamed("p-3", { name: "review", variables: { files: [] } });
			expect(refused.ack).toMatchObject({
				status: 422,
				error: { fields: [expect.objectContaining({ field: "variables.language" })] }
			});
		} finally {
			up.reset();
			socket.close();
		}
	});

	test("/v1/chat/completions takes a prompt reference: rendered messages and settings, logged with the version", async () => {
		const key = await call("auth-api-keys.create", { name: "ide" }, owner);
		const v1 = (body: object) =>
			http(gw.port, "POST", "/v1/chat/completions", { headers: { authorization: `Bearer ${key.key}` }, body });
		const res = await v1({
			prompt: { name: "review", variables: { language: "Rust", files: ["lib.rs"] } },
			messages: [{ role: "user", content: "and tests" }]
		});
		expect(res.status).toBe(200);
		expect(res.body.choices[0].message.content).toBe("echo(a-smart): and tests");
		expect(up.requests.at(-1)!.body.messages).toEqual([
			{ role: "system", content: "You review Rust code." },
			{ role: "user", content: "Review: lib.rs" },
			{ role: "user", content: "and tests" }
		]);
		const logs = (await (await getDb()).query("SELECT prompt FROM ai_completion_logs WHERE api_key_id IS NOT NULL"))
			.rows;
		expect(logs.at(-1).prompt).toMatchObject({ templateId: expect.any(String), versionId: expect.any(String) });
		const bad = await v1({ prompt: { name: "review", variables: { language: "Rust" } } });
		expect(bad.status).toBe(400);
		expect(bad.body.error).toMatchObject({ type: "invalid_request_error", param: "variables.files" });
		expect((await v1({ prompt: "review" })).body.error).toMatchObject({ param: "prompt" });
		expect((await v1({ prompt: { name: "missing" } })).status).toBe(404);
	});

	test("a label move or a new version is seen by the next render on this replica (no stale cache)", async () => {
		const t = await call(
			"prompts.create",
			{ name: "cached", messages: [{ role: "user", content: "one" }], label: "production" },
			member
		);
		expect((await call("prompts.render", { name: "cached" }, viewer)).messages[0].content).toBe("one");
		await call(
			"prompts.publish",
			{ id: t.template.id, messages: [{ role: "user", content: "two" }], label: "production" },
			admin
		);
		expect((await call("prompts.render", { name: "cached" }, viewer)).messages[0].content).toBe("two");
		await call("prompts.rollback", { id: t.template.id }, admin);
		expect((await call("prompts.render", { name: "cached" }, viewer)).messages[0].content).toBe("one");
	});

	test("a completion in an experiment uses the caller's variant; the log and the execution name it", async () => {
		const t = await call(
			"prompts.create",
			{
				name: "exp-complete",
				messages: [{ role: "user", content: "one" }],
				model_settings: { model: "smart" },
				label: "production"
			},
			owner
		);
		await call(
			"prompts.publish",
			{ id: t.template.id, messages: [{ role: "user", content: "two" }], model_settings: { model: "smart" } },
			owner
		);
		const x = await call(
			"prompts-experiments.start",
			{
				template_id: t.template.id,
				name: "complete",
				metric: "cost",
				variants: [
					{ version: 1, weight: 1 },
					{ version: 2, weight: 1 }
				]
			},
			owner
		);
		const r = await call("prompts.complete", { name: "exp-complete" }, member);
		expect(r.experiment_id).toBe(x.experiment.id);
		const variant = x.variants.find((v: any) => v.id === r.variant_id);
		expect(r.version.number).toBe(variant.version);
		expect(r.completion.choices[0].message.content).toBe(`echo(a-smart): ${variant.version === 1 ? "one" : "two"}`);
		// Sticky by user: the same member gets the same variant again.
		expect((await call("prompts.complete", { name: "exp-complete" }, member)).variant_id).toBe(r.variant_id);
		const sql = await getDb();
		const exec = (await sql.query("SELECT * FROM prompts_executions WHERE id = $1", [r.execution_id])).rows[0];
		expect(exec).toMatchObject({ variant_id: r.variant_id, experiment_id: x.experiment.id, success: null });
		const log = await waitUntil(
			"the completion's log row",
			async () =>
				(await sql.query("SELECT prompt FROM ai_completion_logs WHERE request_id = $1", [exec.request_id]))
					.rows[0],
			row => !!row
		);
		expect(log.prompt).toEqual({ templateId: t.template.id, versionId: r.version.id, variantId: r.variant_id });
		const d = await call("prompts-experiments.get", { id: x.experiment.id }, member);
		const figures = d.variants.find((v: any) => v.id === r.variant_id);
		expect(figures).toMatchObject({ samples: 2, mean_tokens: expect.any(Number) });
		expect(figures.mean_cost).toBeGreaterThan(0);
		await call("prompts-experiments.stop", { id: x.experiment.id }, owner);
	});

	test("executions are listed per organization and take the caller's reported outcome", async () => {
		const r = await call("prompts.render", { name: "review", variables: { language: "Go", files: [] } }, viewer);
		const rest = (method: string, path: string, member: Member, body?: object) =>
			http(gw.port, method, path, { token: member.accessToken, org: member.organization.id, body });
		const page = await rest(
			"GET",
			`/api/prompts/executions?query=${encodeURIComponent(JSON.stringify({ template_id: r.template.id }))}`,
			a
		);
		expect(page.status).toBe(200);
		expect(page.body.rows.map((e: any) => e.id)).toContain(r.execution_id);
		expect((await rest("GET", `/api/prompts/executions/${r.execution_id}`, a)).body).toMatchObject({
			kind: "render",
			success: true
		});
		const fed = await rest("POST", `/api/prompts/executions/${r.execution_id}/feedback`, a, {
			success: false,
			feedback: -0.5
		});
		expect(fed.status).toBe(200);
		expect(fed.body).toMatchObject({ id: r.execution_id, success: false, feedback: -0.5 });
		expect(
			(await rest("POST", `/api/prompts/executions/${r.execution_id}/feedback`, a, { feedback: 2 })).body.error
				.fields
		).toEqual([expect.objectContaining({ field: "feedback" })]);
		// Another organization neither sees nor scores it.
		expect((await rest("GET", `/api/prompts/executions/${r.execution_id}`, b)).status).toBe(404);
		expect(
			(await rest("POST", `/api/prompts/executions/${r.execution_id}/feedback`, b, { success: true })).status
		).toBe(404);
		expect((await rest("GET", "/api/prompts/executions", b)).body.rows.map((e: any) => e.id)).not.toContain(
			r.execution_id
		);
	});

	test("without the prompts module, /v1 answers a prompt reference with a 503 and plain requests as before", async () => {
		const key = await call("auth-api-keys.create", { name: "ide-2" }, owner);
		await broker.destroyService(broker.getLocalService("prompts")!);
		const v1 = (body: object) =>
			http(gw.port, "POST", "/v1/chat/completions", { headers: { authorization: `Bearer ${key.key}` }, body });
		const res = await v1({ prompt: { name: "review", variables: {} } });
		expect(res.status).toBe(503);
		expect(res.body.error.message).toMatch(/prompts module is not running/);
		expect((await v1({ model: "smart", messages: [{ role: "user", content: "hi" }] })).status).toBe(200);
	});
});
