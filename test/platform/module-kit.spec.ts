// The generic pieces modules share (no infrastructure): tenant SQL binding, optional filters, the audit chain's
// verifier, the broadcast-dropped local cache, the in-flight registry and the checks of a module's routes.
import fs from "fs";
import os from "os";
import path from "path";
import { bindOrganization, TenantSql, where } from "../../lib/db/tenant";
import { likeContains } from "../../lib/db/pg-adapter";
import { AuditRow, ChainVerifier, entryHash } from "../../lib/audit-chain";
import { LocalCache } from "../../lib/local-cache";
import { Context, Service, ServiceBroker } from "moleculer";
import { InFlight, StopDeadline, stopTimeLeft } from "../../lib/in-flight";
import { CancellableMixin } from "../../mixins/cancellable.mixin";
import { brokerOptions } from "../../moleculer.config";
import { loadConfig } from "../../lib/config";
import { loadModuleRoutes } from "../../lib/module-routes";

const ORG = "00000000-0000-4000-8000-000000000001";

describe("tenant SQL", () => {
	test("$org is bound to the caller's organization as the next parameter, wherever it appears", () => {
		expect(bindOrganization("SELECT * FROM t WHERE id = $1 AND organization_id = $org", ["x"], ORG)).toEqual([
			"SELECT * FROM t WHERE id = $1 AND organization_id = $2",
			["x", ORG]
		]);
		const [sql] = bindOrganization(
			"INSERT INTO t (organization_id) VALUES ($org) ON CONFLICT DO NOTHING; -- $org",
			[],
			ORG
		);
		expect(sql).not.toContain("$org");
	});

	test("a statement without the organization filter is refused before it reaches the database", () => {
		expect(() => bindOrganization("SELECT * FROM secrets WHERE id = $1", ["x"], ORG)).toThrow(
			/must filter by organization/
		);
		expect(() => bindOrganization("SELECT * FROM t WHERE x = $organization", [], ORG)).toThrow(
			/must filter by organization/
		);
	});

	test("optional filters skip undefined values and number the rest; a repeated ? is one parameter", () => {
		const args: unknown[] = [];
		const sql = where(
			args,
			["organization_id = $org", null],
			["env = ?", undefined],
			["(a ILIKE ? OR b ILIKE ?)", "%x%"],
			["n = ?", 3]
		);
		expect(sql).toBe("organization_id = $org AND (a ILIKE $1 OR b ILIKE $1) AND n = $2");
		expect(args).toEqual(["%x%", 3]);
	});

	test("byId: a client's id names its organization's row, or a 404; a non-UUID never reaches the database", async () => {
		const sent: unknown[][] = [];
		const rows: Record<string, unknown> = { [ORG]: { id: ORG } };
		const conn = {
			async query(_sql: string, params: unknown[] = []) {
				sent.push(params);
				const row = rows[params[0] as string];
				return { rows: row ? [row] : [], rowCount: row ? 1 : 0 };
			}
		};
		const t = new TenantSql(ORG, undefined, conn as any);
		const sql = "SELECT * FROM t WHERE id = $1 AND organization_id = $org AND n = $2";
		await expect(t.byId("thing", sql, ORG, [7])).resolves.toEqual({ id: ORG });
		expect(sent[0]).toEqual([ORG, 7, ORG]);
		await expect(t.byId("thing", sql, "00000000-0000-4000-8000-000000000002")).rejects.toMatchObject({
			code: 404,
			message: "thing not found"
		});
		await expect(t.byId("thing", sql, "not-a-uuid")).rejects.toMatchObject({ code: 404 });
		expect(sent).toHaveLength(2);
	});

	test("search text is matched literally (the adapter's escaping)", () => {
		expect(likeContains("50%_a\\b")).toBe("%50\\%\\_a\\\\b%");
	});
});

describe("audit chain", () => {
	const entry = (seq: number, prev: string): AuditRow & { prev_hash: string; hash: string } => {
		const row: AuditRow = {
			organization_id: ORG,
			seq,
			actor_type: "user",
			actor_id: "u",
			action: "create",
			target: null,
			outcome: "success",
			request_id: null,
			details: { b: 1, a: 2 },
			created_at: new Date(1_700_000_000_000 + seq)
		};
		return { ...row, prev_hash: prev, hash: entryHash(prev, row) };
	};
	const chain = (n: number) => {
		const rows = [];
		for (let i = 1, prev = ""; i <= n; prev = rows[rows.length - 1].hash, i++) rows.push(entry(i, prev));
		return rows;
	};

	test("an intact chain verifies against its head; key order in details does not change a hash", () => {
		const rows = chain(3);
		const v = new ChainVerifier();
		v.add(rows);
		expect(v.result({ seq: 3, hash: rows[2].hash })).toEqual({ ok: true, entries: 3 });
		expect(entryHash("", { ...rows[0], details: { a: 2, b: 1 } })).toBe(rows[0].hash);
	});

	// Hashes computed before the chain moved to RFC 8785 canonical JSON (lib/audit-chain.ts): chains in databases
	// must still verify, so the hash input of a stored row is unchanged.
	test("an entry hashed the old way verifies after the change to RFC 8785", () => {
		const old: AuditRow = {
			organization_id: "00000000-0000-4000-8000-000000000001",
			seq: 7,
			actor_type: "user",
			actor_id: "u-1",
			action: "secrets.reveal",
			target: "s-1",
			outcome: "success",
			request_id: "r-1",
			details: { z: [1, 2.5, "é\u2028"], a: { y: null, x: true }, "\u00e9": "ü", "10": 1, "9": -0 },
			created_at: "2024-05-01T12:00:00.123Z"
		};
		const hash = "093133bcfddd60f8c36af9dd86eb6fc6e49ac0f75933c6025ba63ae9d283d527";
		expect(entryHash("abc", old)).toBe(hash);
		const v = new ChainVerifier();
		v.expected = 7;
		expect(v.add([{ ...old, prev_hash: "", hash: entryHash("", old) }])).toBe(true);
	});

	test("details hash as the database gives them back (undefined dropped, NaN as null)", () => {
		const written = entry(1, "");
		const appended = { ...written, details: { gone: undefined, n: Number.NaN, k: "v" } };
		const readBack = { ...written, details: JSON.parse(JSON.stringify(appended.details)) };
		expect(entryHash("", appended)).toBe(entryHash("", readBack));
	});

	test("names the first altered entry, a removed middle entry, and entries removed from the end", () => {
		const rows = chain(4);
		const altered = new ChainVerifier();
		altered.add([rows[0], { ...rows[1], actor_id: "someone-else" }, rows[2], rows[3]]);
		expect(altered.result()).toMatchObject({ ok: false, firstBad: { seq: 2, problem: "altered" } });
		const gap = new ChainVerifier();
		gap.add([rows[0], rows[2], rows[3]]);
		expect(gap.result()).toMatchObject({ ok: false, firstBad: { seq: 2, problem: "removed" } });
		const cut = new ChainVerifier();
		cut.add(rows.slice(0, 3));
		expect(cut.result({ seq: 4, hash: rows[3].hash })).toMatchObject({
			ok: false,
			firstBad: { seq: 4, problem: "removed" }
		});
	});
});

describe("local cache", () => {
	test("bounded, and entries a change makes stale are dropped", () => {
		const cache = new LocalCache<{ org: string }>({ max: 2, ttlMs: 60_000 });
		cache.set("a", { org: "1" });
		cache.set("b", { org: "2" });
		cache.set("c", { org: "1" });
		expect(cache.size).toBe(2);
		expect(cache.has("a")).toBe(false);
		cache.dropWhere(v => v.org === "1");
		expect([cache.has("b"), cache.has("c")]).toEqual([true, false]);
	});

	test("a shorter life for one entry is kept; a longer one is capped at the cache's", () => {
		const cache = new LocalCache<string>({ max: 10, ttlMs: 60_000 });
		cache.set("expired", "x", 0);
		cache.set("long", "y", 10 * 60_000);
		expect((cache as any).lru.getRemainingTTL("long")).toBeLessThanOrEqual(60_000);
	});
});

describe("in-flight registry", () => {
	test("aborts one request by id, or all of them, with the given reason", () => {
		const reg = new InFlight();
		const a = new AbortController();
		const b = new AbortController();
		reg.add("a", a);
		reg.add("b", b);
		expect(reg.abort("a", "cancelled")).toBe(true);
		expect(a.signal.reason).toBe("cancelled");
		expect(reg.abort("missing", "x")).toBe(false);
		reg.delete("a");
		expect(reg.abortAll("stopping")).toBe(1);
		expect(b.signal.reason).toBe("stopping");
	});

	test("settled: true once the last request ends, false when the time runs out first", async () => {
		const reg = new InFlight();
		expect(await reg.settled(0)).toBe(true);
		reg.add("a", new AbortController());
		reg.add("b", new AbortController());
		const whenIdle = reg.settled(10_000);
		reg.delete("a");
		reg.delete("missing");
		let settled: boolean | undefined;
		void whenIdle.then(v => (settled = v));
		await new Promise(r => setImmediate(r));
		expect(settled).toBeUndefined();
		reg.delete("b");
		expect(await whenIdle).toBe(true);
		reg.add("c", new AbortController());
		expect(await reg.settled(20)).toBe(false);
		expect(reg.size).toBe(1);
	});
});

// A graceful stop has one budget (tracking.shutdownTimeout) for all its waits: Moleculer's wait for a service's
// running calls and then the service's drain of the streams those calls left running used to take a full budget each.
describe("graceful stop budget", () => {
	test("a service with a call and a stream in flight stops within one budget, the stream aborted at its end", async () => {
		const BUDGET = 1500;
		const broker = new ServiceBroker({
			logger: false,
			tracking: { enabled: true, shutdownTimeout: BUDGET },
			internalMiddlewares: false,
			// As in moleculer.config.ts: StopDeadline after ContextTracker.
			middlewares: ["ContextTracker", StopDeadline]
		});
		let aborted: { reason: unknown; at: number } | undefined;
		broker.createService({
			name: "streaming",
			mixins: [CancellableMixin("streaming.cancel", why => new Error(why), { drainOnStop: true })],
			actions: {
				// A plain call that never answers: ContextTracker waits for it.
				hang: () => new Promise(() => undefined),
				// A stream: the call answers at once, the work goes on, registered in the service's in-flight requests.
				stream(this: Service & { inFlight: InFlight }, ctx: Context) {
					const controller = new AbortController();
					controller.signal.addEventListener("abort", () => {
						aborted = { reason: controller.signal.reason, at: Date.now() };
					});
					this.inFlight.add(ctx.requestID!, controller);
					return "streaming";
				}
			}
		});
		await broker.start();
		void broker.call("streaming.hang").catch(() => undefined);
		expect(await broker.call("streaming.stream")).toBe("streaming");
		expect(stopTimeLeft(broker)).toBe(BUDGET);
		const started = Date.now();
		await broker.stop();
		const took = Date.now() - started;
		expect(aborted?.reason).toEqual(new Error("service stopping"));
		// Within the budget (plus the registry's 100 ms stop delay and timers' slack), not twice it as before.
		expect(took).toBeGreaterThanOrEqual(BUDGET);
		expect(took).toBeLessThan(BUDGET * 1.6);
		expect(aborted!.at - started).toBeLessThan(BUDGET * 1.6);
		// Stopped: a later stop has its whole budget again, and the service its own (no) timeout.
		expect(stopTimeLeft(broker)).toBe(BUDGET);
		expect(broker.getLocalService("streaming")!.settings.$shutdownTimeout).toBeUndefined();
	});

	test("the platform's middlewares place StopDeadline after ContextTracker", () => {
		const list = brokerOptions(loadConfig({ JWT_SECRET: "x".repeat(40) })).middlewares as unknown[];
		expect(list.indexOf(StopDeadline)).toBeGreaterThan(list.indexOf("ContextTracker"));
		expect(list.indexOf("ContextTracker")).toBeGreaterThanOrEqual(0);
	});
});

describe("module routes", () => {
	// A modules folder holding one module "r" whose routes file exports `routes` (as source text).
	function modulesWithRoutes(routes: string): string {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-routes-"));
		fs.mkdirSync(path.join(dir, "r"));
		const manifest = { name: "r", description: "routes", publishes: [], consumes: [], routes: "r.routes" };
		fs.writeFileSync(path.join(dir, "r", "r.module.js"), `module.exports = ${JSON.stringify(manifest)};`);
		fs.writeFileSync(path.join(dir, "r", "r.routes.js"), `module.exports = ${routes};`);
		return dir;
	}

	test("a direct alias must name a function alias of its route on a fixed path", () => {
		const fn = "function (req, res) { res.end(); }";
		const ok = modulesWithRoutes(`[{ path: "/r", direct: ["POST /a"], aliases: { "POST /a": ${fn} } }]`);
		expect(loadModuleRoutes([ok]).map(r => r.route.direct)).toEqual([["POST /a"]]);
		for (const [aliases, direct] of [
			[`{ "POST /a": "r.act" }`, "POST /a"], // an action, not a function
			[`{ "POST /a": ${fn} }`, "POST /b"], // no such alias
			[`{ "GET /a/:id": ${fn} }`, "GET /a/:id"] // a path with parameters
		]) {
			const dir = modulesWithRoutes(`[{ path: "/r", direct: ["${direct}"], aliases: ${aliases} }]`);
			expect(() => loadModuleRoutes([dir])).toThrow(
				`direct alias "${direct}" of /r must name a function alias on a fixed path`
			);
		}
	});
});
