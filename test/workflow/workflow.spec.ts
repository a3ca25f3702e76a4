// workflow: definitions with immutable versions and strict graph validation, and their runs on the execution
// engine, in-process against the real PostgreSQL with webhook steps against a local receiver: parallel branches,
// conditions that skip the other branch, waits that park the run and resume it, templates between steps,
// per-workflow concurrency, schedules that tick once across two brokers, and tenancy.
import { createTestBroker, as } from "../helpers/broker";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { waitUntil } from "../helpers/wait";
import { registerOwner } from "../helpers/planning";
import { getDb } from "../../lib/db";
import type { AuthInfo } from "../../lib/permissions";
import { WebhookReceiver } from "../execution/webhook-receiver";

jest.setTimeout(60_000);

describeWith(["postgres"])("workflow (in-process broker, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let t: Awaited<ReturnType<typeof createTestBroker>>;
	let owner: AuthInfo;
	let other: AuthInfo;
	let env: Record<string, string>;
	const hook = new WebhookReceiver();
	const call = (action: string, params: object, who: AuthInfo = owner): Promise<any> =>
		t.broker.call(action, params, as(who));
	const hookNode = (id: string, extra: object = {}) => ({
		id,
		kind: "http_webhook",
		title: `call ${id}`,
		config: { url: `${hook.url}/${id}`, method: "POST", body: { id }, ...extra }
	});
	const hits = (path: string) => hook.received.filter(r => r.path === path).length;
	const ended = (id: string) =>
		waitUntil(
			`run ${id} to end`,
			() => call("execution-runs.get", { id }),
			(d: any) => ["completed", "failed", "cancelled"].includes(d.run.status)
		);
	const statuses = (d: any) => Object.fromEntries(d.steps.map((s: any) => [s.nodeId, s.status]));
	const expectInvalid = async (graph: object, field: string, message?: RegExp) => {
		const err = await call("workflow-definitions.create", { name: `bad ${Math.random()}`, graph }).catch(e => e);
		expect(err).toMatchObject({ code: 422 });
		expect(err.data[0].field).toBe(field);
		if (message) expect(err.data[0].message).toMatch(message);
	};

	beforeAll(async () => {
		await hook.start();
		db = await createTestDatabase();
		env = {
			DATABASE_URL: db.url,
			EXECUTION_ALLOWED_PRIVATE_HOSTS: "127.0.0.1",
			EXECUTION_POLL_MS: "100",
			EXECUTION_LEASE_MS: "2000",
			EXECUTION_RETRY_BASE_MS: "20",
			WORKFLOW_SCHEDULE_POLL_MS: "100"
		};
		t = await createTestBroker(env, [
			"services/auth/auth.service.ts",
			"services/execution/runs.service.ts",
			"services/workflow/definitions.service.ts"
		]);
		owner = await registerOwner(t.broker, "o@example.com");
		other = await registerOwner(t.broker, "x@example.com");
	});

	afterAll(async () => {
		await t?.stop();
		await db?.drop();
		await hook.stop();
	});

	test("a graph is refused with a 422 naming the field: cycles, unknown or duplicate nodes, bad configs", async () => {
		const a = hookNode("a");
		const b = hookNode("b");
		await expectInvalid(
			{
				nodes: [a, b],
				edges: [
					{ from: "a", to: "b" },
					{ from: "b", to: "a" }
				]
			},
			"graph.edges",
			/cycle/
		);
		await expectInvalid({ nodes: [a, { ...b, id: "a" }], edges: [] }, "graph.nodes[1].id", /another node/);
		await expectInvalid({ nodes: [a], edges: [{ from: "a", to: "zz" }] }, "graph.edges[0].to", /no node "zz"/);
		await expectInvalid({ nodes: [a, b], edges: [{ from: "a", to: "b", when: true }] }, "graph.edges[0].when");
		await expectInvalid({ nodes: [{ ...a, id: "Not A Slug" }], edges: [] }, "graph.nodes[0].id");
		await expectInvalid(
			{ nodes: [{ ...a, config: { url: "not a url" } }], edges: [] },
			"graph.nodes[0].config.url"
		);
		await expectInvalid(
			{ nodes: [{ id: "c", kind: "condition", title: "c", config: { left: 1, op: "like" } }], edges: [] },
			"graph.nodes[0].config.op"
		);
		await expectInvalid(
			{ nodes: [{ id: "w", kind: "wait", title: "w", config: {} }], edges: [] },
			"graph.nodes[0].config",
			/seconds or until/
		);
		await expectInvalid(
			{ nodes: [{ ...a, config: { url: `${hook.url}/{{inputs.missing}}` } }], edges: [] },
			"graph.nodes[0].config.url",
			/no input "missing"/
		);
		await expectInvalid(
			{ nodes: [a, { ...b, config: { url: `${hook.url}/{{steps.b.output.status}}` } }], edges: [] },
			"graph.nodes[1].config.url",
			/not a node this one comes after/
		);
		const err = await call("workflow-definitions.create", {
			name: "cron",
			graph: { nodes: [a], edges: [] },
			schedule: { cron: "every tuesday" }
		}).catch(e => e);
		expect(err).toMatchObject({ code: 422, data: [expect.objectContaining({ field: "schedule.cron" })] });
		expect((await call("workflow-definitions.list", {})).map((d: any) => d.name)).toEqual([]);
	});

	test("parallel branches both run and a join runs after them; the run records workflow and version", async () => {
		const def = await call("workflow-definitions.create", {
			name: "Fan out",
			graph: {
				nodes: [hookNode("p-start"), hookNode("p-left"), hookNode("p-right"), hookNode("p-join")],
				edges: [
					{ from: "p-start", to: "p-left" },
					{ from: "p-start", to: "p-right" },
					{ from: "p-left", to: "p-join" },
					{ from: "p-right", to: "p-join" }
				]
			}
		});
		expect(def).toMatchObject({ version: 1, enabled: true });
		const run = await call("workflow-definitions.startRun", { id: def.id });
		expect(run).toMatchObject({ workflowId: def.id, workflowVersion: 1, trigger: "manual", planId: null });
		const d = await ended(run.id);
		expect(d.run.status).toBe("completed");
		expect(statuses(d)).toEqual({
			"p-start": "succeeded",
			"p-left": "succeeded",
			"p-right": "succeeded",
			"p-join": "succeeded"
		});
		for (const p of ["/p-start", "/p-left", "/p-right", "/p-join"]) expect(hits(p)).toBe(1);
		const join = hook.received.find(r => r.path === "/p-join")!;
		expect(join.at).toBeGreaterThanOrEqual(
			Math.max(...hook.received.filter(r => /p-(left|right)/.test(r.path)).map(r => r.at))
		);
		const history = await call("workflow-definitions.runs", { id: def.id });
		expect(history.map((r: any) => [r.id, r.trigger, r.workflowVersion])).toEqual([[run.id, "manual", 1]]);
		const events = (
			await (
				await getDb()
			).query<{ payload: any }>("SELECT payload FROM outbox WHERE channel = 'workflow.events' ORDER BY id")
		).rows.map(r => r.payload.type);
		expect(events).toEqual(expect.arrayContaining(["workflow.definition.created", "workflow.run.started"]));
	});

	test("a condition runs one branch and skips the other (and what only it leads to); the join still runs", async () => {
		const graph = (right: number) => ({
			inputs: { n: { type: "number", required: true } },
			nodes: [
				{ id: "check", kind: "condition", title: "n > 5?", config: { left: "{{inputs.n}}", op: "gt", right } },
				hookNode(`c${right}-yes`),
				hookNode(`c${right}-no`),
				hookNode(`c${right}-no-more`),
				hookNode(`c${right}-join`)
			],
			edges: [
				{ from: "check", to: `c${right}-yes`, when: true },
				{ from: "check", to: `c${right}-no`, when: false },
				{ from: `c${right}-no`, to: `c${right}-no-more` },
				{ from: `c${right}-yes`, to: `c${right}-join` },
				{ from: `c${right}-no-more`, to: `c${right}-join` }
			]
		});
		const def = await call("workflow-definitions.create", { name: "Branch", graph: graph(5) });
		await expect(call("workflow-definitions.startRun", { id: def.id })).rejects.toMatchObject({
			code: 422,
			data: [expect.objectContaining({ field: "inputs.n" })]
		});
		const d = await ended((await call("workflow-definitions.startRun", { id: def.id, inputs: { n: 7 } })).id);
		expect(d.run).toMatchObject({ status: "completed", done: 5 });
		expect(statuses(d)).toEqual({
			check: "succeeded",
			"c5-yes": "succeeded",
			"c5-no": "skipped",
			"c5-no-more": "skipped",
			"c5-join": "succeeded"
		});
		expect(d.steps.find((s: any) => s.nodeId === "check").output).toEqual({ result: true });
		expect([hits("/c5-yes"), hits("/c5-no"), hits("/c5-no-more"), hits("/c5-join")]).toEqual([1, 0, 0, 1]);
		const d2 = await ended((await call("workflow-definitions.startRun", { id: def.id, inputs: { n: 2 } })).id);
		expect(statuses(d2)).toMatchObject({ "c5-yes": "skipped", "c5-no": "succeeded", "c5-no-more": "succeeded" });
	});

	test("templates carry inputs and step outputs into later steps; a missing one fails the step for good", async () => {
		const def = await call("workflow-definitions.create", {
			name: "Templates",
			graph: {
				inputs: { who: { type: "string", default: "ada" } },
				nodes: [
					hookNode("tpl-first"),
					{
						id: "second",
						kind: "http_webhook",
						title: "uses the first's answer",
						config: {
							url: `${hook.url}{{steps.tpl-first.output.body.path}}/{{inputs.who}}`,
							method: "POST"
						}
					},
					{
						id: "third",
						kind: "http_webhook",
						title: "reads what is not there",
						config: { url: `${hook.url}/tpl/{{steps.tpl-first.output.body.nothing}}`, method: "POST" }
					}
				],
				edges: [
					{ from: "tpl-first", to: "second" },
					{ from: "second", to: "third" }
				]
			}
		});
		const d = await ended((await call("workflow-definitions.startRun", { id: def.id })).id);
		expect(hits("/tpl-first/ada")).toBe(1);
		expect(d.run.status).toBe("failed");
		const third = d.steps.find((s: any) => s.nodeId === "third");
		expect(third).toMatchObject({ status: "failed", attempts: 1 });
		expect(third.error).toMatch(
			/config\.url: the template \{\{steps\.tpl-first\.output\.body\.nothing\}\} refers to nothing/
		);
	});

	test("a wait step sleeps with the run parked (no lease) and the run resumes when its time comes", async () => {
		const def = await call("workflow-definitions.create", {
			name: "Wait",
			graph: {
				nodes: [
					hookNode("w-before"),
					{ id: "pause", kind: "wait", title: "pause", config: { seconds: 1.5 } },
					hookNode("w-after")
				],
				edges: [
					{ from: "w-before", to: "pause" },
					{ from: "pause", to: "w-after" }
				]
			}
		});
		const run = await call("workflow-definitions.startRun", { id: def.id });
		const parked = await waitUntil(
			"the run to park on its wait",
			() => call("execution-runs.get", { id: run.id }),
			(d: any) => d.run.status === "waiting"
		);
		const pause = parked.steps.find((s: any) => s.nodeId === "pause");
		expect(pause.status).toBe("sleeping");
		expect(new Date(pause.wakeAt).getTime()).toBeGreaterThan(Date.now() - 1500);
		const { rows } = await (await getDb()).query("SELECT lease_owner FROM execution_runs WHERE id = $1", [run.id]);
		expect(rows[0].lease_owner).toBeNull();
		expect(hits("/w-after")).toBe(0);
		const d = await ended(run.id);
		expect(d.run.status).toBe("completed");
		expect(statuses(d)).toEqual({ "w-before": "succeeded", pause: "succeeded", "w-after": "succeeded" });
		expect([hits("/w-before"), hits("/w-after")]).toEqual([1, 1]);
		expect(new Date(d.steps[2].startedAt).getTime()).toBeGreaterThanOrEqual(new Date(pause.wakeAt).getTime());
	});

	test("a run started on v1 finishes on v1 after v2 is saved", async () => {
		const graph = (tag: string) => ({
			nodes: [
				hookNode(`v-${tag}-a`),
				{ id: "hold", kind: "manual_approval", title: "hold", config: {} },
				hookNode(`v-${tag}-b`)
			],
			edges: [
				{ from: `v-${tag}-a`, to: "hold" },
				{ from: "hold", to: `v-${tag}-b` }
			]
		});
		const def = await call("workflow-definitions.create", { name: "Versioned", graph: graph("one") });
		const run = await call("workflow-definitions.startRun", { id: def.id });
		await waitUntil(
			"the run to wait for approval",
			() => call("execution-runs.get", { id: run.id }),
			(d: any) => d.run.status === "waiting"
		);
		const v2 = await call("workflow-definitions.update", { id: def.id, graph: graph("two") });
		expect(v2.version).toBe(2);
		// Saving the same graph again makes no new version.
		expect((await call("workflow-definitions.update", { id: def.id, graph: graph("two") })).version).toBe(2);
		await call("execution-runs.approve", { id: run.id, position: 1 });
		const d = await ended(run.id);
		expect(d.run).toMatchObject({ status: "completed", workflowVersion: 1 });
		expect([hits("/v-one-b"), hits("/v-two-b")]).toEqual([1, 0]);
		const got = await call("workflow-definitions.get", { id: def.id });
		expect(got.versions.map((v: any) => v.version)).toEqual([2, 1]);
		expect(got.graph.nodes[0].id).toBe("v-two-a");
		expect((await call("workflow-definitions.version", { id: def.id, version: 1 })).graph.nodes[0].id).toBe(
			"v-one-a"
		);
		// A run may ask for an older version; one that does not exist is a 404 naming it.
		const old = await call("workflow-definitions.startRun", { id: def.id, version: 1 });
		expect(old.workflowVersion).toBe(1);
		await call("execution-runs.cancel", { id: old.id });
		await expect(call("workflow-definitions.startRun", { id: def.id, version: 9 })).rejects.toMatchObject({
			code: 404,
			data: [expect.objectContaining({ field: "version" })]
		});
	});

	test("a workflow's concurrency limit holds further runs queued; they start as slots free", async () => {
		const def = await call("workflow-definitions.create", {
			name: "One at a time",
			concurrency: { limit: 1 },
			graph: {
				nodes: [{ id: "gate", kind: "manual_approval", title: "gate", config: {} }, hookNode("limited")],
				edges: [{ from: "gate", to: "limited" }]
			}
		});
		const first = await call("workflow-definitions.startRun", { id: def.id });
		const second = await call("workflow-definitions.startRun", { id: def.id });
		expect(second.status).toBe("queued");
		await waitUntil(
			"the first to wait for approval",
			() => call("execution-runs.get", { id: first.id }),
			(d: any) => d.run.status === "waiting"
		);
		// The second stays queued while the first holds the slot (parked on approval, it still holds it).
		await new Promise(r => setTimeout(r, 500));
		const held = await call("execution-runs.get", { id: second.id });
		expect(held.run.status).toBe("queued");
		expect(held.steps.map((s: any) => s.status)).toEqual(["pending", "pending"]);
		await call("execution-runs.approve", { id: first.id, position: 0 });
		await ended(first.id);
		await waitUntil(
			"the second to take the freed slot and wait for approval",
			() => call("execution-runs.get", { id: second.id }),
			(d: any) => d.run.status === "waiting" && d.steps[0].status === "waiting_approval"
		);
		await call("execution-runs.approve", { id: second.id, position: 0 });
		expect((await ended(second.id)).run.status).toBe("completed");
		expect(hits("/limited")).toBe(2);
	});

	test("another organization sees none of it: 404 on get, update, runs, start; empty lists", async () => {
		const def = await call("workflow-definitions.create", {
			name: "Mine",
			graph: { nodes: [hookNode("mine")], edges: [] }
		});
		for (const [action, params] of [
			["workflow-definitions.get", { id: def.id }],
			["workflow-definitions.update", { id: def.id, name: "theirs" }],
			["workflow-definitions.runs", { id: def.id }],
			["workflow-definitions.startRun", { id: def.id }],
			["workflow-definitions.version", { id: def.id, version: 1 }],
			["workflow-definitions.remove", { id: def.id }]
		] as const)
			await expect(call(action, params, other)).rejects.toMatchObject({ code: 404 });
		expect(await call("workflow-definitions.list", {}, other)).toEqual([]);
		await call("workflow-definitions.remove", { id: def.id });
		await expect(call("workflow-definitions.get", { id: def.id })).rejects.toMatchObject({ code: 404 });
	});

	test("a cron schedule runs once per tick with two replicas ticking; missed ticks give one catch-up run", async () => {
		// A second broker on the same database: another replica of both services.
		const t2 = await createTestBroker({ ...env, NODE_ID: "second" }, [
			"services/execution/runs.service.ts",
			"services/workflow/definitions.service.ts"
		]);
		try {
			const def = await call("workflow-definitions.create", {
				name: "Every second",
				graph: { nodes: [hookNode("tick")], edges: [] },
				schedule: { cron: "* * * * * *" }
			});
			const ticks = async () =>
				(
					await (
						await getDb()
					).query<{ tick_at: Date; run_id: string }>(
						"SELECT tick_at, run_id FROM workflow_schedule_ticks WHERE definition_id = $1 ORDER BY tick_at",
						[def.id]
					)
				).rows;
			await waitUntil("three ticks", ticks, rows => rows.length >= 3);
			await call("workflow-definitions.update", { id: def.id, enabled: false });
			const rows = await ticks();
			const runs = await waitUntil(
				"every tick's run to end",
				() => call("workflow-definitions.runs", { id: def.id }),
				(r: any[]) => r.length >= rows.length && r.every(x => x.status === "completed")
			);
			expect(runs).toHaveLength(rows.length);
			expect(runs.every((r: any) => r.trigger === "schedule")).toBe(true);
			expect(new Set(runs.map((r: any) => r.id))).toEqual(new Set(rows.map(r => r.run_id)));
			expect(hits("/tick")).toBe(rows.length);
			// One second apart: no tick twice, none left out between the first and the last.
			const times = rows.map(r => r.tick_at.getTime());
			expect(times.slice(1).map((x, i) => x - times[i])).toEqual(times.slice(1).map(() => 1000));

			// Down for two years: of the ticks missed (Jan 1, 09:00 in Tokyo), only the latest runs, once.
			const yearly = await call("workflow-definitions.create", {
				name: "New year in Tokyo",
				graph: { nodes: [hookNode("yearly")], edges: [] },
				schedule: { cron: "0 9 1 1 *", timezone: "Asia/Tokyo" }
			});
			await (
				await getDb()
			).query("UPDATE workflow_definitions SET last_tick_at = now() - interval '2 years' WHERE id = $1", [
				yearly.id
			]);
			const caught = await waitUntil(
				"the catch-up run",
				() => call("workflow-definitions.runs", { id: yearly.id }),
				(r: any[]) => r.length > 0 && r[0].status === "completed"
			);
			await new Promise(r => setTimeout(r, 500));
			expect(await call("workflow-definitions.runs", { id: yearly.id })).toHaveLength(1);
			expect(caught[0].trigger).toBe("schedule");
			const { rows: yearTicks } = await (
				await getDb()
			).query<{ tick_at: Date }>("SELECT tick_at FROM workflow_schedule_ticks WHERE definition_id = $1", [
				yearly.id
			]);
			const year = new Date().getUTCFullYear();
			expect(yearTicks.map(r => r.tick_at.toISOString())).toEqual([`${year}-01-01T00:00:00.000Z`]);
			await call("workflow-definitions.update", { id: yearly.id, enabled: false });
		} finally {
			await t2.stop();
		}
	});

	test("a sub_workflow step starts the child run and its run waits, parked, until the child ends", async () => {
		await call("workflow-definitions.create", {
			name: "Child",
			graph: {
				inputs: { who: { type: "string", required: true } },
				nodes: [
					{ id: "nap", kind: "wait", title: "nap", config: { seconds: 1 } },
					{ ...hookNode("child-hook"), config: { url: `${hook.url}/child-{{inputs.who}}`, method: "POST" } }
				],
				edges: [{ from: "nap", to: "child-hook" }]
			}
		});
		const parent = await call("workflow-definitions.create", {
			name: "Parent",
			graph: {
				inputs: { who: { type: "string", default: "bob" } },
				nodes: [
					{
						id: "sub",
						kind: "sub_workflow",
						title: "run the child",
						config: { workflow: "Child", inputs: { who: "{{inputs.who}}" } }
					},
					{
						...hookNode("after-child"),
						config: {
							url: `${hook.url}/after{{steps.sub.output.steps.child-hook.body.path}}`,
							method: "POST"
						}
					}
				],
				edges: [{ from: "sub", to: "after-child" }]
			}
		});
		const run = await call("workflow-definitions.startRun", { id: parent.id });
		const parked = await waitUntil(
			"the parent to park on its child",
			() => call("execution-runs.get", { id: run.id }),
			(d: any) => d.run.status === "waiting" && d.steps[0].status === "sleeping"
		);
		const childId = parked.steps[0].output.runId;
		const d = await ended(run.id);
		expect(d.run.status).toBe("completed");
		expect(hits("/child-bob")).toBe(1);
		expect(hits("/after/child-bob")).toBe(1);
		const child = await call("execution-runs.get", { id: childId });
		expect(child.run).toMatchObject({ status: "completed", trigger: "workflow" });
		expect(d.steps[0]).toMatchObject({ status: "succeeded", output: { runId: childId, status: "completed" } });

		// A workflow that starts itself is stopped by the nesting limit, and its step fails with why.
		const loop = await call("workflow-definitions.create", {
			name: "Loop",
			graph: {
				nodes: [{ id: "again", kind: "sub_workflow", title: "again", config: { workflow: "Loop" } }],
				edges: []
			}
		});
		const looped = await ended((await call("workflow-definitions.startRun", { id: loop.id })).id);
		expect(looped.run.status).toBe("failed");
		expect(looped.steps[0].error).toMatch(/nest at most 5 deep/);
	});

	test("execution's startGraph is refused to anyone but the workflow service", async () => {
		await expect(
			call("execution-runs.startGraph", {
				workflowId: owner.organizationId,
				workflowVersion: 1,
				title: "x",
				trigger: "manual",
				steps: [
					{
						position: 0,
						node_id: "x",
						kind: "http_webhook",
						title: "x",
						config: {},
						depends_on: [],
						depends_when: {}
					}
				],
				limits: { workflow: null, organization: 5 }
			})
		).rejects.toMatchObject({ code: 403 });
	});
});
