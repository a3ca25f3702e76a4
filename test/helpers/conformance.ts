// The conformance suite every module gets for free: tests generated from each module's manifest and the actions of
// its service files, run against one in-process gateway with every module on real PostgreSQL. A module added later
// is covered by adding its folder; where a rule needs parameters no schema can suggest, the module may declare
// samples beside its tests (test/<module>/<module>.conformance.ts, see ConformanceSamples).
import crypto from "crypto";
import fs from "fs";
import path from "path";
import type { ServiceBroker } from "moleculer";
import { loadManifests, ModuleManifest, SERVICES_DIR } from "../../lib/module";
import { ACCOUNT, AUTHENTICATED, AuthInfo, PUBLIC, Role, ROLES, roleRank } from "../../lib/permissions";
import { SPECIAL_PERMISSIONS } from "../../lib/permissions";
import { permissionTable } from "../../lib/authz";
import { PgAdapter } from "../../lib/db/pg-adapter";
import { createTestDatabase } from "./infra";
import { AUTH_FILES, GATEWAY_FILE, http, Member, register, startGateway, TestGateway } from "./gateway";
import { waitUntil } from "./wait";
import { as, ROOT } from "./broker";

// Parameters for actions whose schema alone does not give a call that reaches the rule under test: values, or a
// function making them with `call` (acting as the organization's owner), e.g. to create a row they refer to.
type Params = Record<string, unknown>;
export interface ConformanceSamples {
	// "<service>.<action>" -> parameters for that action's calls.
	params?: Record<string, Params | ((call: (action: string, params: Params) => Promise<any>) => Promise<Params>)>;
}

export interface StaticAction {
	name: string; // "<service>.<action>"
	service: string;
	def: Record<string, any>;
	rest?: { method: string; path: string };
}

export interface StaticService {
	name: string;
	file: string;
	actions: StaticAction[];
	// A DbMixin table scoped to the caller's organization.
	tenantTable?: string;
	// The service's REST base path (settings.rest), if it has one.
	rest?: string;
}

export interface ModuleUnderTest {
	manifest: ModuleManifest;
	dir: string;
	services: StaticService[];
	samples: ConformanceSamples;
}

type Schema = Record<string, any>;

// What moleculer's mixin merge gives for actions, enough to name them before a broker exists: a mixin's action is
// overridden field by field by the service's own, and `false` removes it.
function mergedActions(schema: Schema): Record<string, any> {
	const out: Record<string, any> = {};
	for (const mixin of schema.mixins ?? []) Object.assign(out, mergedActions(mixin));
	for (const [name, def] of Object.entries<any>(schema.actions ?? {})) {
		if (def === false) out[name] = false;
		else if (typeof def === "function") out[name] = { ...(out[name] || {}), handler: def };
		else out[name] = { ...(out[name] || {}), ...def };
	}
	return out;
}

function settingsOf(schema: Schema): Schema {
	return Object.assign({}, ...(schema.mixins ?? []).map(settingsOf), schema.settings ?? {});
}

function tenantTableOf(schema: Schema): string | undefined {
	for (const m of schema.mixins ?? []) {
		if (m.adapter instanceof PgAdapter && m.adapter.columns.has("organization_id")) return m.adapter.table;
		const inner = tenantTableOf(m);
		if (inner) return inner;
	}
	return undefined;
}

function parseRest(rest: unknown, base = ""): StaticAction["rest"] {
	if (typeof rest !== "string") return undefined;
	const [method, p] = rest.includes(" ") ? rest.split(/\s+/, 2) : ["*", rest];
	return { method: method.toUpperCase(), path: (base + p).replace(/\/+$/, "") || "/" };
}

// The tables the platform's own migrations create (migrations/platform): identity and events, shared by every module.
let platformTableNames: Set<string> | undefined;
function platformTables(): Set<string> {
	if (platformTableNames) return platformTableNames;
	const dir = path.join(ROOT, "migrations", "platform");
	const sql = fs
		.readdirSync(dir)
		.filter(f => f.endsWith(".sql"))
		.map(f => fs.readFileSync(path.join(dir, f), "utf8"))
		.join("\n");
	platformTableNames = new Set(
		[...sql.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?([a-z_][a-z0-9_]*)/gi)].map(x => x[1])
	);
	return platformTableNames;
}

export function serviceFilesOf(dir: string, mod: string): string[] {
	return fs
		.readdirSync(path.join(dir, mod))
		.filter(f => f.endsWith(".service.ts"))
		.sort()
		.map(f => path.join(dir, mod, f));
}

// Every module in `dir` with the published actions of its services, read without starting anything.
export function modulesUnderTest(dir = SERVICES_DIR, only?: string[]): ModuleUnderTest[] {
	return loadManifests(dir)
		.filter(m => !only || only.includes(m.name))
		.map(manifest => {
			const services = serviceFilesOf(dir, manifest.name).map(file => {
				const exported = require(file);
				const schema: Schema = exported.default ?? exported;
				const settings = settingsOf(schema);
				const actions = Object.entries(mergedActions(schema))
					.filter(([, def]) => def && (def.visibility ?? "published") === "published")
					.map(([name, def]) => ({
						name: `${schema.name}.${name}`,
						service: schema.name,
						def,
						rest: parseRest(def.rest, settings.rest ?? "")
					}));
				const rest = typeof settings.rest === "string" ? settings.rest : undefined;
				return { name: schema.name as string, file, actions, tenantTable: tenantTableOf(schema), rest };
			});
			const samplesFile = [path.join(ROOT, "test", manifest.name, `${manifest.name}.conformance.ts`)].find(f =>
				fs.existsSync(f)
			);
			const samples: ConformanceSamples = samplesFile ? (require(samplesFile).default ?? {}) : {};
			return { manifest, dir, services, samples };
		});
}

// A value the fastest-validator rule accepts, for required parameters only (optional ones are left out).
export function sampleValue(rule: any): unknown {
	if (Array.isArray(rule)) return sampleValue(rule[0]);
	const r = typeof rule === "string" ? { type: rule.split("|")[0] } : rule;
	switch (r.type) {
		case "uuid":
			return crypto.randomUUID();
		case "email":
			return `conformance-${crypto.randomBytes(3).toString("hex")}@example.com`;
		case "url":
			return "http://127.0.0.1:9/"; // nothing listens; no lookup leaves the machine
		case "number":
			return r.min ?? 1;
		case "boolean":
			return false;
		case "enum":
			return r.values[0];
		case "equal":
			return r.value;
		case "date":
			return new Date().toISOString();
		case "array":
			return r.min && r.items ? Array.from({ length: r.min }, () => sampleValue(r.items)) : [];
		case "object":
			return r.props ? sampleParams(r.props) : {};
		case "string":
		default:
			// Unique, so creating twice does not collide with a unique name.
			return `conformance-${crypto.randomBytes(4).toString("hex")}`
				.padEnd(r.min ?? 0, "x")
				.slice(0, r.max ?? 100);
	}
}

export function sampleParams(params: Record<string, any> = {}): Record<string, unknown> {
	const out: Record<string, unknown> = {};
	for (const [name, rule] of Object.entries(params)) {
		if (name.startsWith("$$")) continue;
		const optional =
			(typeof rule === "string" && rule.includes("|optional")) ||
			(typeof rule === "object" && !Array.isArray(rule) && (rule.optional || rule.default !== undefined));
		if (!optional) out[name] = sampleValue(rule);
	}
	return out;
}

async function paramsFor(m: ModuleUnderTest, a: StaticAction, broker: ServiceBroker, owner: AuthInfo) {
	const sample = m.samples.params?.[a.name];
	if (typeof sample === "function") return sample((action, params) => broker.call(action, params, as(owner)));
	return sample ?? sampleParams(a.def.params);
}

export interface Cluster {
	gw: TestGateway;
	broker: ServiceBroker;
	port: number;
	// Two organizations, each with its owner.
	a: Member;
	b: Member;
}

// One gateway with the platform's modules (auth and gateway always) plus `files`, and two organizations.
export async function startCluster(
	env: Record<string, string>,
	files: string[]
): Promise<Cluster & { stop(): Promise<void> }> {
	const db = await createTestDatabase();
	const gw = await startGateway(
		{ DATABASE_URL: db.url, MASTER_KEY: crypto.randomBytes(32).toString("base64"), ...env },
		files.filter(
			f => ![...AUTH_FILES, GATEWAY_FILE].map(x => path.resolve(ROOT, x)).includes(path.resolve(ROOT, f))
		)
	);
	const a = await register(gw.port, `a-${crypto.randomBytes(3).toString("hex")}@example.com`);
	const b = await register(gw.port, `b-${crypto.randomBytes(3).toString("hex")}@example.com`);
	return {
		gw,
		broker: gw.broker,
		port: gw.port,
		a,
		b,
		async stop() {
			await gw.stop();
			await db.drop();
		}
	};
}

const authAs = (member: Member, role: Role): AuthInfo => ({
	kind: "session",
	userId: member.user.id,
	organizationId: member.organization.id,
	role,
	permissions: [...permissionTable().byRole[role]]
});

async function outcome(broker: ServiceBroker, action: string, params: unknown, auth: AuthInfo | undefined) {
	try {
		await broker.call(action, params, { ...as(auth), timeout: 10_000 });
		return { code: 200, message: "" };
	} catch (err: any) {
		return { code: Number(err?.code) || 500, message: String(err?.message ?? err) };
	}
}

// Declares the suite's tests for `modules`; `cluster()` gives the running gateway (started by the caller).
export function describeConformance(modules: ModuleUnderTest[], cluster: () => Cluster) {
	const allManifests = () => {
		const byName = new Map<string, ModuleManifest>();
		for (const dir of new Set(modules.map(m => m.dir))) for (const m of loadManifests(dir)) byName.set(m.name, m);
		for (const m of loadManifests(SERVICES_DIR)) if (!byName.has(m.name)) byName.set(m.name, m);
		return [...byName.values()];
	};

	for (const mod of modules) {
		const { manifest } = mod;
		describe(`module ${manifest.name}`, () => {
			for (const svc of mod.services)
				for (const action of svc.actions) {
					const permission: string | undefined = action.def.permission;

					test(`${action.name}: declares a permission (${permission ?? "none"}) enforced as declared`, async () => {
						expect(permission).toBeTruthy();
						const p = permission!;
						if (!SPECIAL_PERMISSIONS.includes(p))
							expect(Object.keys(manifest.permissions ?? {})).toContain(p);
						const { broker, a } = cluster();
						const params = await paramsFor(mod, action, broker, authAs(a, "owner"));
						if (p === PUBLIC) return;
						const anonymous = await outcome(broker, action.name, params, undefined);
						expect([action.name, "anonymous", anonymous.code]).toEqual([action.name, "anonymous", 401]);
						if (p === AUTHENTICATED || p === ACCOUNT) return;
						const lowest = manifest.permissions![p].role;
						for (const role of ROLES) {
							const got = await outcome(broker, action.name, params, authAs(a, role));
							const above = roleRank(role) >= roleRank(lowest);
							if (above)
								expect([action.name, role, got.code, got.message]).not.toEqual([
									action.name,
									role,
									403,
									got.message
								]);
							else expect([action.name, role, got.code]).toEqual([action.name, role, 403]);
						}
					});

					if (action.rest)
						test(`${action.name}: declares what it answers (response), for OpenAPI and the UI's types`, () => {
							expect([action.name, action.def.response != null]).toEqual([action.name, true]);
						});

					if (action.rest)
						test(`${action.name}: has an OpenAPI entry (${action.rest.method} ${action.rest.path})`, async () => {
							const doc = (await http(cluster().port, "GET", "/api/openapi.json")).body;
							const ops = Object.entries<any>(doc.paths).flatMap(([p, byMethod]) =>
								Object.entries<any>(byMethod).map(([method, op]) => ({ path: p, method, op }))
							);
							const found = ops.filter(o => o.op.operationId === action.name);
							expect(found.map(o => o.method.toUpperCase())).toContain(
								action.rest!.method === "*" ? found[0]?.method.toUpperCase() : action.rest!.method
							);
							const expected = "/api" + action.rest!.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
							expect(found.map(o => o.path)).toContain(expected);
							expect(found[0].op["x-permission"]).toBe(action.def.permission);
						});
				}

			// One name per entity: service <module>-<entity>, route /<module>/<entity>, table <prefix><entity> with
			// underscores; the module's own service is <module> at /<module>. A service over one of the platform's
			// identity tables (migrations/platform: users, organizations, teams, …) names it without the prefix. The
			// gateway's routes are the platform's own (/api/health, /api/openapi.json).
			for (const svc of mod.services.filter(
				s => manifest.name !== "gateway" && (s.rest !== undefined || s.tenantTable)
			))
				test(`${svc.name}: one name for service, route and table`, () => {
					const m = manifest.name;
					expect([svc.name, svc.name === m || svc.name.startsWith(`${m}-`)]).toEqual([svc.name, true]);
					const entity = svc.name === m ? "" : svc.name.slice(m.length + 1);
					if (svc.rest !== undefined) expect(svc.rest).toBe(entity ? `/${m}/${entity}` : `/${m}`);
					if (svc.tenantTable && entity) {
						const table = entity.replace(/-/g, "_");
						const platform = platformTables().has(svc.tenantTable);
						expect(svc.tenantTable).toBe(platform ? table : `${manifest.tablePrefix ?? ""}${table}`);
					}
				});

			test("events: published channels exist; consumed channels are published; handlers' groups declared", () => {
				const published = new Set(allManifests().flatMap(m => m.publishes));
				// What a module publishes is typed by its events file (services/<module>/<module>.events.ts).
				const eventsFile = path.join(mod.dir, manifest.name, `${manifest.name}.events.ts`);
				if (manifest.publishes.length)
					expect([eventsFile, fs.existsSync(eventsFile)]).toEqual([eventsFile, true]);
				for (const c of manifest.consumes)
					expect([c.channel, published.has(c.channel)]).toEqual([c.channel, true]);
				for (const svc of mod.services) {
					const schema = require(svc.file).default ?? require(svc.file);
					for (const [channel, def] of Object.entries<any>(schema.channels ?? {})) {
						const group = def?.group ?? schema.name;
						// "*": every channel the manifest's consumesAll expands to, none of the module's own.
						if (channel === "*") {
							expect(manifest.consumesAll).toEqual({ group });
							for (const own of manifest.publishes)
								expect(manifest.consumes).not.toContainEqual({ channel: own, group });
						} else expect(manifest.consumes).toContainEqual({ channel, group });
					}
				}
			});

			for (const svc of mod.services.filter(s => s.tenantTable)) {
				const create = svc.actions.find(a => a.name === `${svc.name}.create`);
				if (!create) continue;
				test(`${svc.name}: another organization's ids are not found and lists never show its rows`, async () => {
					const { broker, a, b } = cluster();
					const mine = authAs(a, "owner");
					const theirs = authAs(b, "owner");
					const row: any = await broker.call(
						create.name,
						await paramsFor(mod, create, broker, mine),
						as(mine)
					);
					expect(row.id).toBeTruthy();
					for (const verb of ["get", "update", "remove"]) {
						if (!svc.actions.some(x => x.name === `${svc.name}.${verb}`)) continue;
						const got = await outcome(broker, `${svc.name}.${verb}`, { id: row.id }, theirs);
						expect([verb, got.code]).toEqual([verb, 404]);
					}
					for (const verb of ["list", "find"]) {
						if (!svc.actions.some(x => x.name === `${svc.name}.${verb}`)) continue;
						const seen: any = await broker.call(`${svc.name}.${verb}`, { pageSize: 100 }, as(theirs));
						const rows: any[] = Array.isArray(seen) ? seen : seen.rows;
						expect(rows.map(r => r.id)).not.toContain(row.id);
						// Even asked for by column, the other organization's row is not there.
						const asked: any = await broker.call(
							`${svc.name}.${verb}`,
							{ query: { id: row.id } },
							as(theirs)
						);
						expect((Array.isArray(asked) ? asked : asked.rows).map((r: any) => r.id)).not.toContain(row.id);
					}
					// Untouched in its own organization.
					if (!svc.actions.some(x => x.name === `${svc.name}.list`)) return;
					const own: any = await broker.call(`${svc.name}.list`, { query: { id: row.id } }, as(mine));
					expect((Array.isArray(own) ? own : own.rows).map((r: any) => r.id)).toContain(row.id);
				});
			}

			const restActions = mod.services.flatMap(s => s.actions).filter(a => a.rest && a.rest.method !== "*");
			const listing = restActions.find(a => a.rest!.method === "GET" && !a.rest!.path.includes(":"));
			if (listing)
				test(`another organization in X-Organization-Id is refused: GET ${listing.rest!.path}`, async () => {
					const { port, a, b } = cluster();
					const r = await http(port, "GET", `/api${listing.rest!.path}`, {
						token: a.accessToken,
						org: b.organization.id
					});
					expect(r.status).toBe(403);
					expect(r.body.error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
				});

			// A body parameter that is required: sending none must give the one error shape naming it.
			const validated = restActions.find(
				a =>
					a.rest!.method !== "GET" &&
					a.def.permission !== PUBLIC &&
					!a.rest!.path.includes(":") &&
					Object.keys(sampleParams(a.def.params)).length > 0
			);
			if (validated)
				test(`a validation failure has the error shape: ${validated.rest!.method} ${validated.rest!.path}`, async () => {
					const { port, a } = cluster();
					const path = `/api${validated.rest!.path}`;
					const r = await waitUntil(
						`route ${path}`,
						() =>
							http(port, validated.rest!.method, path, {
								token: a.accessToken,
								org: a.organization.id,
								body: {}
							}),
						res => res.status !== 404
					);
					expect(r.status).toBe(422);
					expect(Object.keys(r.body)).toEqual(["error"]);
					expect(r.body.error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
					const missing = Object.keys(sampleParams(validated.def.params));
					expect(r.body.error.fields?.map((f: any) => f.field)).toEqual(expect.arrayContaining([missing[0]]));
				});
		});
	}
}

// Waits until every rest action of `modules` has its route (moleculer-web registers aliases shortly after start).
export async function waitForRoutes(c: Cluster, modules: ModuleUnderTest[]) {
	const names = modules.flatMap(m => m.services.flatMap(s => s.actions.filter(a => a.rest).map(a => a.name)));
	await waitUntil(
		"every module's routes",
		async () => (await http(c.port, "GET", "/api/openapi.json")).body,
		doc => {
			const ops = Object.values<any>(doc?.paths ?? {}).flatMap(m => Object.values<any>(m));
			const ids = new Set(ops.map(op => op.operationId));
			return names.every(n => ids.has(n));
		}
	);
}
