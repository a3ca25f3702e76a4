// Prompt experiments: assignment by hash (deterministic, weighted), and on real PostgreSQL through the broker and the
// gateway: starting (validation, one running experiment per label), renders split between variants and recorded,
// seeded simulated experiments (a real difference is won by the right variant and promoted; none is never called),
// the minimum sample, manual stop with a promotion, and tenancy. Replicas: experiments.cluster.spec.ts.
import crypto from "crypto";
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { as } from "../helpers/broker";
import { http, Member, register, startGateway, TestGateway } from "../helpers/gateway";
import { waitUntil } from "../helpers/wait";
import { permissionTable } from "../../lib/authz";
import { getDb } from "../../lib/db";
import type { AuthInfo, Role } from "../../lib/permissions";
import { assign, verdictOf } from "../../services/prompts/experiments";

jest.setTimeout(120_000);

// Seeded PRNG (mulberry32): the simulated outcomes are the same on every run.
function prng(seed: number) {
	return () => {
		seed = (seed + 0x6d2b79f5) | 0;
		let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
		t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

describe("experiment assignment and verdicts (pure)", () => {
	test("the same (experiment, subject) always gets the same variant; shares follow the weights", () => {
		const id = crypto.randomUUID();
		const weights = [1, 3, 6];
		const counts = [0, 0, 0];
		const N = 20_000;
		for (let i = 0; i < N; i++) {
			const v = assign(id, `user-${i}`, weights);
			expect(assign(id, `user-${i}`, weights)).toBe(v);
			counts[v]++;
		}
		counts.forEach((c, i) => expect(Math.abs(c / N - weights[i] / 10)).toBeLessThan(0.015));
		// Another experiment shuffles subjects independently of this one.
		const other = crypto.randomUUID();
		const moved = Array.from({ length: 1000 }, (_, i) => i).filter(
			i => assign(id, `user-${i}`, [1, 1]) !== assign(other, `user-${i}`, [1, 1])
		).length;
		expect(moved).toBeGreaterThan(400);
		expect(moved).toBeLessThan(600);
	});

	test("no call below the minimum sample; Bonferroni with three variants; lower is better for latency", () => {
		const s = (id: string, n: number, mean: number, variance: number) => ({ id, n, mean, variance });
		expect(verdictOf([s("a", 99, 0.1, 0.09), s("b", 500, 0.9, 0.09)], "success", 100, 0.95)).toMatchObject({
			status: "collecting",
			reason: "No difference yet: 99 of 100 samples"
		});
		const won = verdictOf([s("a", 200, 0.3, 0.21), s("b", 200, 0.5, 0.25)], "success", 100, 0.95);
		expect(won).toMatchObject({ status: "winner", winner_variant_id: "b" });
		expect(won.reason).toMatch(/^B wins: conversion 0\.50 vs 0\.30, p < 0\.001 \(needs 0\.05\)$/);
		// p ≈ 0.03 for each comparison: enough against one variant (0.05), not against two (0.025 each).
		const two = [s("a", 1000, 100, 2500), s("b", 1000, 95.2, 2500)];
		expect(verdictOf(two, "latency", 100, 0.95)).toMatchObject({ status: "winner", winner_variant_id: "b" });
		expect(verdictOf([...two, s("c", 1000, 100, 2500)], "latency", 100, 0.95)).toMatchObject({
			status: "no_difference"
		});
	});
});

const FILES = [
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

describeWith(["postgres"])("prompt experiments (in-process gateway, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	let broker: ServiceBroker;
	let a: Member, b: Member;
	let owner: AuthInfo, member: AuthInfo, bOwner: AuthInfo;
	const call = (action: string, params: object, auth: AuthInfo) => broker.call<any, any>(action, params, as(auth));
	const rest = (method: string, path: string, m: Member, body?: object) =>
		http(gw.port, method, path, { token: m.accessToken, org: m.organization.id, body });
	const rejects = (p: Promise<unknown>, code: number, field?: string) =>
		expect(p).rejects.toMatchObject({ code, ...(field ? { data: [expect.objectContaining({ field })] } : {}) });

	// A template with versions 1..n (content "v<n>"), production on version 1.
	async function template(name: string, n = 2) {
		const t = await call(
			"prompts.create",
			{ name, messages: [{ role: "user", content: "v1" }], label: "production" },
			owner
		);
		for (let i = 2; i <= n; i++)
			await call("prompts.publish", { id: t.template.id, messages: [{ role: "user", content: `v${i}` }] }, owner);
		return t.template.id as string;
	}

	// `sessions` sessions render once each and report success with the probability of the version they saw.
	async function simulate(name: string, sessions: number, conversion: Record<number, number>, seed: number) {
		// Common random numbers: the k-th session of every variant draws the same number, so the outcome does not
		// hang on which sessions the (experiment id's) hash sent where: equal rates give equal records.
		const rand = prng(seed);
		const draws = Array.from({ length: sessions }, () => rand());
		const seen: Record<number, number> = {};
		for (let i = 0; i < sessions; i++) {
			const r = await call("prompts.render", { name, subject: `${name}-session-${i}` }, member);
			const v = r.version.number;
			const k = (seen[v] = (seen[v] ?? -1) + 1);
			await call(
				"prompts-executions.feedback",
				{ id: r.execution_id, success: draws[k] < conversion[v] },
				member
			);
		}
	}

	beforeAll(async () => {
		db = await createTestDatabase();
		gw = await startGateway({ DATABASE_URL: db.url, MASTER_KEY: crypto.randomBytes(32).toString("base64") }, FILES);
		broker = gw.broker;
		a = await register(gw.port, "experiments-a@example.com");
		b = await register(gw.port, "experiments-b@example.com");
		[owner, member, bOwner] = [authAs(a, "owner"), authAs(a, "member"), authAs(b, "owner")];
	});

	afterAll(async () => {
		await gw?.stop();
		await db?.drop();
	});

	test("start is checked: 2..5 variants, positive weights, existing distinct versions, a label; 422 naming the field", async () => {
		const id = await template("checked", 3);
		const start = (p: object, auth = owner) =>
			call("prompts-experiments.start", { template_id: id, name: "x", metric: "success", ...p }, auth);
		await rejects(start({ variants: [{ version: 1, weight: 1 }] }), 422, "variants");
		await rejects(
			start({ variants: Array.from({ length: 6 }, () => ({ version: 1, weight: 1 })) }),
			422,
			"variants"
		);
		await rejects(
			start({
				variants: [
					{ version: 1, weight: 1 },
					{ version: 2, weight: 0 }
				]
			}),
			422,
			"variants[1].weight"
		);
		await rejects(
			start({
				variants: [
					{ version: 1, weight: 1 },
					{ version: 9, weight: 1 }
				]
			}),
			422,
			"variants"
		);
		await rejects(
			start({
				variants: [
					{ version: 2, weight: 1 },
					{ version: 2, weight: 1 }
				]
			}),
			422,
			"variants"
		);
		const two = [
			{ version: 1, weight: 1 },
			{ version: 2, weight: 1 }
		];
		await rejects(start({ variants: two, label: "staging" }), 422, "label");
		await rejects(start({ variants: two, metric: "clicks" }), 422, "metric");
		// Starting needs prompts:manage.
		await rejects(start({ variants: two }, member), 403);
		// Over REST: the error shape names the field.
		const res = await rest("POST", "/api/prompts/experiments", a, {
			template_id: id,
			name: "x",
			metric: "success",
			variants: [{ version: 1, weight: -1 }, two[1]]
		});
		expect(res.status).toBe(422);
		expect(res.body.error.fields).toEqual([expect.objectContaining({ field: "variants[0].weight" })]);

		const started = await start({ variants: two, min_samples: 10 });
		expect(started.experiment).toMatchObject({ status: "running", label: "production", sticky_by: "user" });
		// One running experiment per (template, label).
		await rejects(start({ variants: two }), 409, "label");
		const sql = await getDb();
		expect(
			(await sql.query("SELECT count(*)::int AS n FROM prompts_experiments WHERE template_id = $1", [id])).rows[0]
				.n
		).toBe(1);
	});

	test("renders in an experiment are split by subject, sticky, recorded with the variant", async () => {
		await template("split");
		const t = (await call("prompts.list", { search: "split" }, owner)).rows[0];
		const x = await call(
			"prompts-experiments.start",
			{
				template_id: t.id,
				name: "split",
				metric: "feedback",
				sticky_by: "session",
				variants: [
					{ version: 1, weight: 1 },
					{ version: 2, weight: 1 }
				]
			},
			owner
		);
		const seen = new Set<string>();
		for (let i = 0; i < 20; i++) {
			const r = await call("prompts.render", { name: "split", subject: `s-${i}` }, member);
			const again = await call("prompts.render", { name: "split", subject: `s-${i}` }, member);
			expect(again.variant_id).toBe(r.variant_id);
			expect(r.messages[0].content).toBe(`v${r.version.number}`);
			expect(r.experiment_id).toBe(x.experiment.id);
			const v = x.variants.find((v: any) => v.id === r.variant_id);
			expect(v.version).toBe(r.version.number);
			seen.add(r.variant_id);
		}
		expect(seen.size).toBe(2);
		const r = await call("prompts.render", { name: "split", subject: "s-0" }, member);
		const sql = await getDb();
		const row = (await sql.query("SELECT * FROM prompts_executions WHERE id = $1", [r.execution_id])).rows[0];
		expect(row).toMatchObject({ variant_id: r.variant_id, experiment_id: x.experiment.id, success: null });
		// A version asked for by number is outside the experiment.
		expect(await call("prompts.render", { name: "split", version: 2 }, member)).toMatchObject({
			variant_id: null,
			experiment_id: null
		});
	});

	test("a seeded experiment with a real difference (0.30 vs 0.50) is won by B, which takes production", async () => {
		const id = await template("winner");
		const x = await call(
			"prompts-experiments.start",
			{
				template_id: id,
				name: "winner",
				metric: "success",
				sticky_by: "session",
				min_samples: 150,
				variants: [
					{ version: 1, weight: 1 },
					{ version: 2, weight: 1 }
				]
			},
			owner
		);
		await simulate("winner", 600, { 1: 0.3, 2: 0.5 }, 42);
		const done = await call("prompts-experiments.get", { id: x.experiment.id }, member);
		const b = x.variants.find((v: any) => v.version === 2);
		expect(done.experiment).toMatchObject({ status: "completed", winner_variant_id: b.id });
		expect(done.verdict).toMatchObject({ status: "winner", winner_variant_id: b.id });
		expect(done.verdict.reason).toMatch(/^B wins: conversion 0\.\d\d vs 0\.\d\d, p [<=] /);
		// It stopped as soon as the test called it: every variant has at least the minimum, and the test had not
		// called it one outcome earlier (p is below the level).
		for (const v of done.variants) expect(v.samples).toBeGreaterThanOrEqual(150);
		expect(done.verdict.p_value).toBeLessThan(0.05);
		expect(done.series.length).toBeGreaterThan(0);

		const detail = await call("prompts.get", { id }, member);
		expect(detail.template.labels.production).toBe(2);
		const moves = await call("prompts.labelHistory", { id, label: "production" }, member);
		expect(moves[0]).toMatchObject({ from_version: 1, to_version: 2, moved_by: null });
		// Renders now use the winner, outside any experiment.
		expect(await call("prompts.render", { name: "winner", subject: "anyone" }, member)).toMatchObject({
			version: { number: 2 },
			variant_id: null,
			experiment_id: null
		});
		const sql = await getDb();
		const events = await waitUntil(
			"prompts.experiment.completed in the outbox",
			async () => (await sql.query("SELECT payload FROM outbox WHERE channel = 'prompts.events'")).rows,
			rows =>
				rows.some(
					r => r.payload.type === "prompts.experiment.completed" && r.payload.experimentId === x.experiment.id
				)
		);
		const completed = events.find(
			e => e.payload.type === "prompts.experiment.completed" && e.payload.experimentId === x.experiment.id
		)!.payload;
		expect(completed).toMatchObject({ winnerVariantId: b.id, label: "production", templateId: id });
		expect(events.some(e => e.payload.type === "prompts.experiment.started")).toBe(true);
	});

	test("a seeded experiment with no difference is not called and production stays; a stop may promote", async () => {
		const id = await template("same");
		const x = await call(
			"prompts-experiments.start",
			{
				template_id: id,
				name: "same",
				metric: "success",
				sticky_by: "session",
				min_samples: 100,
				variants: [
					{ version: 1, weight: 1 },
					{ version: 2, weight: 1 }
				]
			},
			owner
		);
		await simulate("same", 400, { 1: 0.4, 2: 0.4 }, 7);
		// The timer's round, run now: it does not call it either.
		await (broker.getLocalService("prompts-experiments") as any).evaluateRunning();
		const got = await call("prompts-experiments.get", { id: x.experiment.id }, member);
		expect(got.experiment.status).toBe("running");
		expect(["no_difference", "collecting"]).toContain(got.verdict.status);
		expect(got.verdict.winner_variant_id).toBeNull();
		expect(got.variants.reduce((s: number, v: any) => s + v.samples, 0)).toBe(400);
		expect((await call("prompts.get", { id }, member)).template.labels.production).toBe(1);

		// A manual stop, promoting version 2 (by REST; only prompts:manage).
		const v2 = x.variants.find((v: any) => v.version === 2);
		await rejects(call("prompts-experiments.stop", { id: x.experiment.id }, member), 403);
		await rejects(
			call("prompts-experiments.stop", { id: x.experiment.id, promote_variant_id: crypto.randomUUID() }, owner),
			422,
			"promote_variant_id"
		);
		const stopped = await rest("POST", `/api/prompts/experiments/${x.experiment.id}/stop`, a, {
			promote_variant_id: v2.id
		});
		expect(stopped.status).toBe(200);
		expect(stopped.body.experiment).toMatchObject({ status: "stopped", winner_variant_id: v2.id });
		expect(stopped.body.verdict.status).toBe("stopped");
		expect((await call("prompts.get", { id }, member)).template.labels.production).toBe(2);
		await rejects(call("prompts-experiments.stop", { id: x.experiment.id }, owner), 409);
		// Once stopped, a new experiment may run on the label.
		const again = await call(
			"prompts-experiments.start",
			{
				template_id: id,
				name: "again",
				metric: "latency",
				variants: [
					{ version: 1, weight: 1 },
					{ version: 2, weight: 1 }
				]
			},
			owner
		);
		const list = await rest("GET", `/api/prompts/experiments?template_id=${id}`, a);
		expect(list.body.map((e: any) => e.id)).toEqual([again.experiment.id, x.experiment.id]);
		expect((await rest("GET", `/api/prompts/experiments?status=stopped&template_id=${id}`, a)).body).toHaveLength(
			1
		);
	});

	test("the minimum sample holds a clear difference back until every variant has it", async () => {
		const id = await template("minimum");
		const x = await call(
			"prompts-experiments.start",
			{
				template_id: id,
				name: "minimum",
				metric: "success",
				sticky_by: "session",
				min_samples: 1000,
				variants: [
					{ version: 1, weight: 1 },
					{ version: 2, weight: 1 }
				]
			},
			owner
		);
		await simulate("minimum", 200, { 1: 0.05, 2: 0.95 }, 3);
		const got = await call("prompts-experiments.get", { id: x.experiment.id }, member);
		expect(got.experiment.status).toBe("running");
		expect(got.verdict.status).toBe("collecting");
		expect(got.verdict.reason).toMatch(/^No difference yet: \d+ of 1000 samples$/);
	});

	test("another organization's experiment is a 404; its renders never see it", async () => {
		const id = await template("private");
		const x = await call(
			"prompts-experiments.start",
			{
				template_id: id,
				name: "private",
				metric: "success",
				variants: [
					{ version: 1, weight: 1 },
					{ version: 2, weight: 1 }
				]
			},
			owner
		);
		await rejects(call("prompts-experiments.get", { id: x.experiment.id }, bOwner), 404);
		await rejects(call("prompts-experiments.stop", { id: x.experiment.id }, bOwner), 404);
		expect((await rest("GET", `/api/prompts/experiments/${x.experiment.id}`, b)).status).toBe(404);
		expect((await rest("GET", "/api/prompts/experiments/not-a-uuid", b)).status).toBe(404);
		expect((await call("prompts-experiments.list", {}, bOwner)).map((e: any) => e.id)).not.toContain(
			x.experiment.id
		);
		// Nor can it start one on this organization's template.
		await rejects(
			call(
				"prompts-experiments.start",
				{
					template_id: id,
					name: "theirs",
					metric: "success",
					variants: [
						{ version: 1, weight: 1 },
						{ version: 2, weight: 1 }
					]
				},
				bOwner
			),
			404
		);
	});
});
