// usage metering on real PostgreSQL, through the broker and the gateway: ai.usage.recorded events consumed in
// batches (the embedded channels adapter) exactly once whatever the redelivery, priced at the organization's price
// in force when they happened, re-priced on request, reported by series / top / summary / CSV within the caller's
// organization only, with every bad parameter named. Permissions, error shape and OpenAPI:
// test/platform/conformance.spec.ts.
import type { ServiceBroker } from "moleculer";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { as } from "../helpers/broker";
import { http, Member, register, startGateway, TestGateway } from "../helpers/gateway";
import { waitUntil } from "../helpers/wait";
import { permissionTable } from "../../lib/authz";
import { getDb } from "../../lib/db";
import type { AuthInfo, Role } from "../../lib/permissions";
import { totalsOf, usageEvent, type UsageRecorded } from "./events";
import { recordUsage } from "../../services/usage/aggregates";

jest.setTimeout(60_000);

const FILES = ["services/usage/usage.service.ts", "services/usage/pricing.service.ts"];
const authAs = (m: Member, role: Role): AuthInfo => ({
	kind: "session",
	userId: m.user.id,
	organizationId: m.organization.id,
	role,
	permissions: [...permissionTable().byRole[role]]
});
const q = async <T = any>(sql: string, params: unknown[] = []) => (await (await getDb()).query<T>(sql, params)).rows;
const MEASURES =
	"sum(input_tokens)::int AS input_tokens, sum(output_tokens)::int AS output_tokens, " +
	"sum(cached_tokens)::int AS cached_tokens, sum(requests)::int AS requests, sum(tool_calls)::int AS tool_calls, " +
	"sum(embeddings)::int AS embeddings";
const HOUR = 3_600_000;

describeWith(["postgres"])("usage metering (in-process gateway, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	let broker: ServiceBroker;
	let a: Member, b: Member;
	let owner: AuthInfo, viewer: AuthInfo, bOwner: AuthInfo;
	const call = (action: string, params: object, auth: AuthInfo) => broker.call<any, any>(action, params, as(auth));
	const send = (e: object) => (broker as any).sendToChannel("ai.events", e) as Promise<void>;
	const recorded = (ids: string[]) =>
		waitUntil(
			`${ids.length} usage events recorded`,
			async () => (await q("SELECT count(*)::int AS n FROM usage_events WHERE id = ANY($1)", [ids]))[0].n,
			n => n === ids.length
		);
	const rejects = (p: Promise<unknown>, code: number, field: string) =>
		expect(p).rejects.toMatchObject({ code, data: [expect.objectContaining({ field })] });

	beforeAll(async () => {
		db = await createTestDatabase();
		gw = await startGateway({ DATABASE_URL: db.url, CHANNELS_RETRY_BASE_MS: "5" }, FILES);
		broker = gw.broker;
		a = await register(gw.port, "usage-a@example.com");
		b = await register(gw.port, "usage-b@example.com");
		[owner, viewer, bOwner] = [authAs(a, "owner"), authAs(a, "viewer"), authAs(b, "owner")];
	});

	afterAll(async () => {
		await gw?.stop();
		await db?.drop();
	});

	test("replaying every event 1 to 5 times, in any order, gives the totals of each event once", async () => {
		const base = Date.UTC(2026, 0, 30, 20); // crosses an hour, a day and a month boundary
		const events: UsageRecorded[] = [];
		for (let i = 0; i < 300; i++)
			events.push(
				usageEvent(a.organization.id, {
					userId: i % 3 ? a.user.id : undefined,
					model: ["m1", "m2", "m3"][i % 3],
					kind: i % 7 === 0 ? "embedding" : "completion",
					inputTokens: 10 + i,
					outputTokens: i % 11,
					cachedTokens: i % 5,
					toolCalls: i % 4 === 0 ? 1 : 0,
					occurredAt: new Date(base + i * 17 * 60_000).toISOString()
				})
			);
		const deliveries = events.flatMap((e, i) => Array.from({ length: 1 + (i % 5) }, () => e));
		deliveries.sort(() => Math.random() - 0.5);
		await Promise.all(deliveries.map(send));
		await recorded(events.map(e => e.id));

		const expected = totalsOf(events);
		for (const table of ["usage_aggregates_hourly", "usage_aggregates_daily", "usage_aggregates_monthly"]) {
			const [got] = await q(`SELECT ${MEASURES} FROM ${table} WHERE organization_id = $1`, [a.organization.id]);
			expect([table, got]).toEqual([table, expected]);
		}
		// Per model and month, as the series report answers.
		const s = await call(
			"usage.series",
			{
				from: new Date(base).toISOString(),
				to: new Date(base + 400 * 17 * 60_000).toISOString(),
				granularity: "month",
				group_by: "model",
				metrics: "requests,input_tokens"
			},
			viewer
		);
		const byModel: Record<string, number> = {};
		for (const p of s.points) byModel[p.key] = (byModel[p.key] ?? 0) + p.requests;
		expect(byModel).toEqual({ m1: 100, m2: 100, m3: 100 });
		expect(s.points.map((p: any) => new Date(p.bucket).toISOString().slice(0, 7))).toEqual(
			expect.arrayContaining(["2026-01", "2026-02"])
		);
		// Each event once in processed_events too.
		const [{ n }] = await q("SELECT count(*)::int AS n FROM processed_events WHERE consumer_group = 'usage'");
		expect(n).toBeGreaterThanOrEqual(events.length);
	});

	test("other ai events are acknowledged unread: no transaction, no processed_events row", async () => {
		const other = { type: "ai.completion.started", id: crypto.randomUUID(), time: new Date().toISOString() };
		// In-process, sending resolves once every consumer group has taken the event.
		await send({ ...other, requestId: "r", model: "m1", organizationId: a.organization.id });
		expect(
			await q(
				"SELECT consumer_group FROM processed_events WHERE event_id = $1 AND consumer_group LIKE 'usage%'",
				[other.id]
			)
		).toEqual([]);
		expect(await q("SELECT 1 FROM usage_events WHERE id = $1", [other.id])).toEqual([]);
	});

	test("an event is priced at the organization's price in force when it happened, else at its own cost", async () => {
		const t0 = Date.UTC(2026, 2, 1);
		const t1 = t0 + 10 * HOUR;
		await call(
			"usage-pricing.create",
			{ model: "priced", input_price: 1, output_price: 2, effective_from: new Date(t0).toISOString() },
			owner
		);
		await call(
			"usage-pricing.create",
			{
				model: "priced",
				input_price: 10,
				output_price: 20,
				cached_input_price: 5,
				cache_write_price: 12,
				effective_from: new Date(t1).toISOString()
			},
			owner
		);
		const at = (ms: number, over = {}) =>
			usageEvent(a.organization.id, {
				model: "priced",
				inputTokens: 1_000_000,
				outputTokens: 1_000_000,
				cost: 0.5,
				occurredAt: new Date(ms).toISOString(),
				...over
			});
		const before = at(t0 - HOUR);
		const first = at(t0 + HOUR);
		const second = at(t1 + HOUR, { cachedTokens: 200_000, cacheWriteTokens: 100_000 });
		const cached = at(t1 + HOUR, { cacheHit: true });
		const elsewhere = usageEvent(b.organization.id, { model: "priced", cost: 0.25, occurredAt: first.occurredAt });
		for (const e of [before, first, second, cached, elsewhere]) await send(e);
		await recorded([before, first, second, cached, elsewhere].map(e => e.id));
		const cost = async (id: string) =>
			Number((await q("SELECT cost FROM usage_events WHERE id = $1", [id]))[0].cost);
		expect(await cost(before.id)).toBe(0.5);
		expect(await cost(first.id)).toBe(3); // 1M in at $1 + 1M out at $2
		// 700k uncached at $10, 200k cached at $5, 100k written at $12, 1M out at $20
		expect(await cost(second.id)).toBeCloseTo(7 + 1 + 1.2 + 20, 10);
		expect(await cost(cached.id)).toBe(0); // served from the response cache: no model was paid
		expect(await cost(elsewhere.id)).toBe(0.25); // another organization's prices do not apply
	});

	test("re-pricing a past period recomputes its events and rebuilds their buckets, saying what changed", async () => {
		const day = Date.UTC(2026, 3, 10);
		const events = [0, 1, 2].map(i =>
			usageEvent(a.organization.id, {
				model: "late",
				inputTokens: 1_000_000,
				outputTokens: 0,
				cost: 1,
				occurredAt: new Date(day + i * HOUR).toISOString()
			})
		);
		for (const e of events) await send(e);
		await recorded(events.map(e => e.id));
		const dailyCost = async () =>
			Number(
				(
					await q(
						"SELECT sum(cost) AS c FROM usage_aggregates_daily WHERE organization_id = $1 AND model = 'late'",
						[a.organization.id]
					)
				)[0].c
			);
		expect(await dailyCost()).toBe(3);
		// A price added afterwards, effective before the events: nothing changes until the period is re-priced.
		await call(
			"usage-pricing.create",
			{ model: "late", input_price: 4, output_price: 0, effective_from: new Date(day - HOUR).toISOString() },
			owner
		);
		expect(await dailyCost()).toBe(3);
		const r = await http(gw.port, "POST", "/api/usage/pricing/reprice", {
			token: a.accessToken,
			org: a.organization.id,
			body: { from: new Date(day).toISOString(), to: new Date(day + 2 * HOUR).toISOString(), model: "late" }
		});
		expect(r.status).toBe(200);
		expect(r.body).toMatchObject({ events: 2, changed: 2, cost_before: 2, model: "late" });
		expect(r.body.cost_after).toBe(8);
		expect(r.body.buckets).toEqual({ hour: 2, day: 1, month: 1 });
		// The third event is outside the period: still at its old cost, and the day's bucket holds both.
		expect(await dailyCost()).toBe(9);
		for (const table of ["usage_aggregates_hourly", "usage_aggregates_monthly"]) {
			const [{ c }] = await q(
				`SELECT sum(cost) AS c FROM ${table} WHERE organization_id = $1 AND model = 'late'`,
				[a.organization.id]
			);
			expect([table, Number(c)]).toEqual([table, 9]);
		}
		// Only usage:manage may re-price.
		await expect(
			call("usage-pricing.reprice", { from: new Date(day).toISOString(), to: new Date().toISOString() }, viewer)
		).rejects.toMatchObject({ code: 403 });
	});

	test("prices are versions: no update; one organization never sees another's prices or usage", async () => {
		const mine = await call("usage-pricing.create", { model: "v", input_price: 1, output_price: 1 }, owner);
		expect(mine).toMatchObject({ model: "v", input_price: 1, created_by: a.user.id });
		const patch = await http(gw.port, "PATCH", `/api/usage/pricing/${mine.id}`, {
			token: a.accessToken,
			org: a.organization.id,
			body: { input_price: 2 }
		});
		expect(patch.status).toBe(404);
		expect((await call("usage-pricing.list", { pageSize: 100 }, bOwner)).rows.map((r: any) => r.id)).not.toContain(
			mine.id
		);
		await expect(call("usage-pricing.get", { id: mine.id }, bOwner)).rejects.toMatchObject({ code: 404 });
		await expect(call("usage-pricing.remove", { id: mine.id }, bOwner)).rejects.toMatchObject({ code: 404 });

		const range = { from: "2026-01-01T00:00:00Z", to: "2026-12-01T00:00:00Z", granularity: "month" };
		const seenByB = await call("usage.series", { ...range, group_by: "model" }, bOwner);
		expect(seenByB.points.map((p: any) => p.key)).toEqual(["priced"]); // its one event, nothing of A's
		const topB = await call("usage.top", { by: "user", from: range.from, to: range.to }, bOwner);
		expect(topB.rows.map((r: any) => r.key)).not.toContain(a.user.id);
		const sumA = await call("usage.summary", { from: range.from, to: range.to }, viewer);
		const sumB = await call("usage.summary", { from: range.from, to: range.to }, bOwner);
		expect(sumB.requests).toBe(1);
		expect(sumA.requests).toBeGreaterThan(300);
		// Another organization named in the header is refused, not answered with its data.
		const r = await http(gw.port, "GET", "/api/usage/summary", { token: a.accessToken, org: b.organization.id });
		expect(r.status).toBe(403);
	});

	test("top-N by model, user and key, and the CSV export", async () => {
		const range = { from: "2026-01-01T00:00:00Z", to: "2026-12-01T00:00:00Z" };
		const byModel = await call("usage.top", { ...range, by: "model", metric: "requests", limit: 2 }, viewer);
		expect(byModel.rows.map((r: any) => r.key)).toEqual(["m1", "m2"]);
		expect(byModel.rows[0].requests).toBe(100);
		const byUser = await call("usage.top", { ...range, by: "user" }, viewer);
		expect(byUser.rows.find((r: any) => r.key === a.user.id)).toMatchObject({ label: "usage-a" });
		const byKey = await call("usage.top", { ...range, by: "api_key" }, viewer);
		expect(byKey.rows.map((r: any) => r.key)).toEqual([null]); // no request came with an API key

		const csv = await http(
			gw.port,
			"GET",
			"/api/usage/export?granularity=month&group_by=model&metrics=requests,cost" +
				`&from=${range.from}&to=${range.to}`,
			{ token: a.accessToken, org: a.organization.id }
		);
		expect(csv.status).toBe(200);
		expect(csv.headers.get("content-type")).toMatch(/text\/csv/);
		const lines = csv.text.trim().split("\r\n");
		expect(lines[0]).toBe("bucket,key,label,requests,cost");
		expect(lines).toContain("2026-04-01T00:00:00.000Z,late,late,3,9.000000000000");
	});

	test("every bad parameter is a 422 naming it", async () => {
		const get = (path: string) => http(gw.port, "GET", path, { token: a.accessToken, org: a.organization.id });
		const field = async (path: string) => {
			const r = await get(path);
			return [r.status, r.body.error?.fields?.map((f: any) => f.field)];
		};
		expect(await field("/api/usage/series?granularity=week")).toEqual([422, ["granularity"]]);
		expect(await field("/api/usage/series?group_by=color")).toEqual([422, ["group_by"]]);
		expect(await field("/api/usage/series?metrics=cost,joy")).toEqual([422, ["metrics"]]);
		expect(await field("/api/usage/series?from=yesterday")).toEqual([422, ["from"]]);
		expect(await field("/api/usage/series?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z")).toEqual([
			422,
			["from"]
		]);
		expect(
			await field("/api/usage/series?granularity=hour&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z")
		).toEqual([422, ["to"]]);
		expect(await field("/api/usage/top?by=color")).toEqual([422, ["by"]]);
		expect(await field("/api/usage/top?by=model&limit=1000")).toEqual([422, ["limit"]]);
		await rejects(
			call("usage-pricing.create", { model: "x", input_price: -1, output_price: 0 }, owner),
			422,
			"input_price"
		);
		await rejects(call("usage-pricing.reprice", { from: "2026-02-01", to: "2026-01-01" }, owner), 422, "from");
		await rejects(call("usage-pricing.reprice", { from: "2020-01-01", to: "2026-01-01" }, owner), 422, "to");
	});

	test("usage by team: each event counts in every team its user is a member of, as team quotas count it", async () => {
		// Teams of organization A: the owner is in both, a second member in "Core" only; a service call has no user.
		const c = await register(gw.port, "usage-c@example.com");
		await q("INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, 'member')", [
			a.organization.id,
			c.user.id
		]);
		const [core, ops] = await q<{ id: string }>(
			"INSERT INTO teams (organization_id, name) VALUES ($1, 'Core'), ($1, 'Ops') RETURNING id",
			[a.organization.id]
		);
		await q(
			"INSERT INTO team_members (team_id, user_id, organization_id) VALUES ($1, $3, $4), ($2, $3, $4), ($1, $5, $4)",
			[core.id, ops.id, a.user.id, a.organization.id, c.user.id]
		);
		const month = Date.UTC(2025, 5, 1); // a month of its own: the other tests' ranges do not see it
		const at = (h: number) => new Date(month + h * HOUR).toISOString();
		const ev = (userId: string | undefined, h: number) =>
			usageEvent(a.organization.id, { userId, model: "teamed", cost: 0.5, occurredAt: at(h) });
		const first = [
			...[1, 2, 3, 4].map(h => ev(a.user.id, h)),
			...[5, 6].map(h => ev(c.user.id, h)),
			ev(undefined, 7)
		];
		for (const e of first) await send(e);
		await recorded(first.map(e => e.id));

		const range = { from: at(0), to: at(24 * 30) };
		const byTeam = async () => {
			const s = await call("usage.series", { ...range, granularity: "month", group_by: "team" }, viewer);
			return Object.fromEntries(s.points.map((p: any) => [p.label, [p.requests, p.cost]]));
		};
		expect(await byTeam()).toEqual({ Core: [6, 3], Ops: [4, 2] });
		const top = await call("usage.top", { ...range, by: "team", metric: "requests" }, viewer);
		expect(top.rows.map((r: any) => [r.key, r.label, r.requests])).toEqual([
			[core.id, "Core", 6],
			[ops.id, "Ops", 4]
		]);
		// The organization's totals count each event once, whatever the teams.
		expect(await call("usage.summary", range, viewer)).toMatchObject({ requests: 7, cost: 3.5 });
		// By hour too, and another organization sees none of it.
		const hourly = await call(
			"usage.series",
			{ ...range, to: at(24), granularity: "hour", group_by: "team" },
			viewer
		);
		expect(hourly.points.filter((p: any) => p.label === "Core").length).toBe(6);
		const seenByB = await call("usage.series", { ...range, granularity: "month", group_by: "team" }, bOwner);
		expect(seenByB.points).toEqual([]);

		// Leaving a team changes where new usage goes, not where past usage went, even once the period is re-priced.
		await q("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2", [ops.id, a.user.id]);
		const later = ev(a.user.id, 8);
		await send(later);
		await recorded([later.id]);
		expect(await byTeam()).toEqual({ Core: [7, 3.5], Ops: [4, 2] });
		await call(
			"usage-pricing.create",
			{ model: "teamed", input_price: 0, output_price: 0, effective_from: at(0) },
			owner
		);
		const r = await call("usage-pricing.reprice", { ...range, model: "teamed" }, owner);
		expect(r).toMatchObject({ events: 8, changed: 8, cost_after: 0 });
		expect(await byTeam()).toEqual({ Core: [7, 0], Ops: [4, 0] });
	});

	test("a re-pricing holds back its own organization's ingestion only, and misses none of it", async () => {
		// This database's advisory locks (other test runs share the server).
		const locks = (where = "") =>
			q(
				`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' ${where}
				 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`
			);
		const day = Date.UTC(2025, 7, 3);
		const at = (h: number) => new Date(day + h * HOUR).toISOString();
		const range = { from: at(0), to: at(24), model: "held" };
		const db = await getDb();
		// A batch of organization B being ingested (uncommitted) does not hold up organization A's re-pricing.
		let releaseB!: () => void;
		const bOpen = new Promise<void>(r => (releaseB = r));
		const bBatch = db.transaction(async tx => {
			await recordUsage(tx, [usageEvent(b.organization.id, { model: "held", occurredAt: at(1) })]);
			await bOpen;
		});
		await waitUntil(
			"B's batch in flight",
			() => locks(),
			r => r.length > 0
		);
		expect(await call("usage-pricing.reprice", range, owner)).toMatchObject({ events: 0 });
		releaseB();
		await bBatch;

		// A batch of organization A in flight: A's re-pricing waits for it, then counts its event.
		let releaseA!: () => void;
		const aOpen = new Promise<void>(r => (releaseA = r));
		const aBatch = db.transaction(async tx => {
			await recordUsage(tx, [usageEvent(a.organization.id, { model: "held", cost: 2, occurredAt: at(2) })]);
			await aOpen;
		});
		await waitUntil(
			"A's batch in flight",
			() => locks(),
			r => r.length > 0
		);
		const repricing = call("usage-pricing.reprice", range, owner);
		await waitUntil(
			"the re-pricing waiting for A's batch",
			() => locks("AND NOT granted"),
			r => r.length > 0
		);
		releaseA();
		await aBatch;
		expect(await repricing).toMatchObject({ events: 1, cost_before: 2, cost_after: 2 });
		const [{ c }] = await q(
			"SELECT sum(cost)::float8 AS c FROM usage_aggregates_daily WHERE organization_id = $1 AND model = 'held'",
			[a.organization.id]
		);
		expect(c).toBe(2);
	});
});
