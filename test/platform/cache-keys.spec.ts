// Cached answers are only as right as their keys. Generated from the services as they load (every module under
// services/, mixins merged), so an action added later is checked without touching this file: every parameter an
// action declares is part of its cache key (or is listed below with the reason it cannot change the answer), an
// organization's data is keyed by the organization, a user's by the user, and the key generator tells apart any
// two values of each key.
import os from "os";
import path from "path";
import fs from "fs";
import { ServiceBroker } from "moleculer";
import { loadConfig, setConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";
import { serviceFiles } from "../../lib/node";
import { AUTHENTICATED, PUBLIC } from "../../lib/permissions";

// "<service>.<action>": { param: why it cannot change the answer }. Empty today; an entry needs a real reason.
const NOT_IN_KEY: Record<string, Record<string, string>> = {};

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-cache-keys-"));
const config = loadConfig({
	JWT_SECRET: "test-secret-test-secret-test-secret-0123",
	DATA_DIR: dataDir,
	LOG_LEVEL: "warn"
});
setConfig(config);
const broker = new ServiceBroker({ ...brokerOptions(config), logger: false });
for (const file of serviceFiles(config)) broker.loadService(file);

interface Cached {
	name: string;
	action: any;
	keys: string[] | undefined;
	params: string[];
}
const cached: Cached[] = [];
for (const service of broker.services)
	for (const [name, action] of Object.entries<any>(service.schema.actions ?? {})) {
		if (!action || typeof action !== "object" || !action.cache) continue;
		const keys = typeof action.cache === "object" ? action.cache.keys : undefined;
		const params = Object.keys(action.params ?? {}).filter(p => !p.startsWith("$$"));
		const full = `${service.fullName}.${name}`;
		cached.push({ name: full, action: { ...action, name: full }, keys, params });
	}

const cacher: any = (broker as any).cacher;
const keyOf = (c: Cached, params: Record<string, unknown>, meta: Record<string, unknown> = {}) =>
	cacher.getCacheKey(c.action, c.action.cache, { params, meta });

afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe("cache keys of every cached action", () => {
	test("the services define cached actions (the generated tests below are not empty)", () => {
		const names = cached.map(c => c.name);
		expect(names).toEqual(
			expect.arrayContaining(["auth-teams.list", "ai-providers.list", "ai-providers.get", "ai-deployments.find"])
		);
	});

	test.each(cached.map(c => [c.name, c] as const))("%s: every declared parameter is in the key", (_name, c) => {
		// A key list is a decision about what changes the answer; `cache: true` keys by params only, never the caller.
		expect(c.keys).toBeInstanceOf(Array);
		const justified = NOT_IN_KEY[c.name] ?? {};
		const missing = c.params.filter(p => !c.keys!.includes(p) && !justified[p]);
		expect(missing).toEqual([]);
		// …and nothing undeclared reaches the handler: unknown parameters are removed or refused.
		expect([true, "remove"]).toContain(c.action.params?.$$strict);
	});

	test.each(cached.map(c => [c.name, c] as const))(
		"%s: keyed by the caller where the answer depends on them",
		(_name, c) => {
			const published = (c.action.visibility ?? "published") === "published";
			if (published && c.action.permission !== PUBLIC && c.action.permission !== AUTHENTICATED)
				expect(c.keys).toContain("#auth.organizationId");
			if (published && c.action.permission === AUTHENTICATED) expect(c.keys).toContain("#auth.userId");
			// Reached here for public actions and internal ones (keyed by their params, checked above).
			expect(c.keys).toBeInstanceOf(Array);
		}
	);

	test.each(cached.map(c => [c.name, c] as const))(
		"%s: different values of any key give different keys",
		(_name, c) => {
			const base = keyOf(c, {}, { auth: { organizationId: "org-a", userId: "user-a" } });
			for (const key of c.keys!) {
				const path = key.startsWith("#") ? key.slice(1).split(".") : undefined;
				for (const value of ["x", ["id"], { a: 1 }, 0, null]) {
					const meta = { auth: { organizationId: "org-a", userId: "user-a" } } as any;
					const params: Record<string, unknown> = {};
					if (path) meta[path[0]] = { ...meta[path[0]], [path[1]]: value };
					else params[key] = value;
					expect([key, value, keyOf(c, params, meta)]).not.toEqual([key, value, base]);
				}
			}
		}
	);
});

describe("the key generator", () => {
	const action = { name: "t.list", cache: { keys: ["#auth.organizationId", "sort", "search", "query"] } };
	const c: Cached = { name: "t.list", action, keys: [], params: [] };
	const key = (params: Record<string, unknown>) => keyOf(c, params, { auth: { organizationId: "org-a" } });

	test("values that look alike in text stay apart", () => {
		// Moleculer's own generator joins values with "|" unescaped: the first two pairs got one key each.
		const pairs: [Record<string, unknown>, Record<string, unknown>][] = [
			[{ query: { a: 1, b: 2 } }, { query: { "a|1|b": 2 } }],
			[
				{ sort: 'n"|"x', query: "q" },
				{ sort: "n", search: "x", query: { undefined: "q" } }
			],
			[{ search: "1" }, { search: 1 }],
			[{ search: null }, {}],
			[{ search: "null" }, { search: null }],
			[{ query: ["a", "b"] }, { query: '["a"|"b"]' }]
		];
		for (const [a, b] of pairs) expect([a, key(a)]).not.toEqual([a, key(b)]);
	});

	test("keys stay readable by action and organization, and bounded in length", () => {
		const k = key({ search: "x".repeat(10_000) });
		expect(k.startsWith("t.list:")).toBe(true);
		expect(k).toContain("org-a");
		expect(k.length).toBeLessThan(400);
		expect(key({ search: "x".repeat(10_000) })).toBe(k);
		expect(key({ search: "x".repeat(9_999) + "y" })).not.toBe(k);
	});
});
