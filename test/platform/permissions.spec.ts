// Permissions are declared by the modules' manifests and enforced as declared: the role table is derived from every
// manifest (a permission belongs to one module, so one module's permission never grants another's), and a service
// whose published action has no permission, or one its module does not declare, does not start. No infrastructure.
import fs from "fs";
import os from "os";
import path from "path";
import { ServiceBroker } from "moleculer";
import { ROOT } from "../helpers/broker";
import { loadConfig, setConfig } from "../../lib/config";
import { AuthzMiddleware, grants, permissionsFor, permissionTable, servicePermits } from "../../lib/authz";
import { loadManifests } from "../../lib/module";
import { AuthInfo, derivePermissionTable, grantsIn, Role, ROLES } from "../../lib/permissions";

const FIXTURES_DIR = path.join(ROOT, "test/fixtures/services");
const DEMO = path.join(FIXTURES_DIR, "demo-permissions");

const tmpDirs: string[] = [];
afterAll(() => tmpDirs.forEach(d => fs.rmSync(d, { recursive: true, force: true })));

// A services dir of throwaway modules, each with only a manifest.
function modulesDir(manifests: Record<string, object>): string {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cide-permissions-"));
	tmpDirs.push(dir);
	for (const [name, fields] of Object.entries(manifests)) {
		fs.mkdirSync(path.join(dir, name));
		const manifest = { name, description: "d", publishes: [], consumes: [], ...fields };
		fs.writeFileSync(path.join(dir, name, `${name}.module.js`), `module.exports = ${JSON.stringify(manifest)};`);
	}
	return dir;
}

describe("role table derived from the manifests", () => {
	test("the module part counts: a role holding ai:manage does not hold secrets:manage unless that is granted", () => {
		const table = derivePermissionTable([
			{ name: "ai", permissions: { "ai:manage": { description: "configure AI", role: "member" } } },
			{ name: "secrets", permissions: { "secrets:manage": { description: "every secret", role: "admin" } } }
		]);
		expect(grantsIn(table, "member", "ai:manage")).toBe(true);
		expect(grantsIn(table, "member", "secrets:manage")).toBe(false);
		expect(grantsIn(table, "admin", "secrets:manage")).toBe(true);
		// Roles are ordered: whatever a role holds, every role above it holds too.
		expect(grantsIn(table, "owner", "ai:manage")).toBe(true);
		expect(grantsIn(table, "viewer", "ai:manage")).toBe(false);
		// A permission no module declares is held by no role.
		for (const role of ROLES) expect(grantsIn(table, role, "calendar:manage")).toBe(false);
		expect(grantsIn(table, undefined, "ai:manage")).toBe(false);
		expect(table.byRole.member).toEqual(["ai:manage"]);
		expect(table.declared.get("secrets:manage")).toMatchObject({ module: "secrets", role: "admin" });
	});

	test("the platform's table: concrete permissions per role, as each manifest declares them", () => {
		setConfig(loadConfig({ LOG_LEVEL: "fatal" }));
		const declared = permissionTable().declared;
		expect(declared.get("secrets:write")).toMatchObject({ module: "secrets", role: "member" });
		expect(declared.get("secrets:reveal")).toMatchObject({ module: "secrets", role: "viewer" });
		expect(declared.get("auth:members-manage")).toMatchObject({ module: "auth", role: "admin" });
		expect(declared.get("ai:write")).toMatchObject({ module: "ai", role: "member" });
		expect(permissionsFor("viewer")).toEqual(expect.arrayContaining(["secrets:read", "secrets:reveal", "ai:read"]));
		expect(permissionsFor("viewer")).not.toContain("secrets:write");
		expect(permissionsFor("member")).toContain("secrets:write");
		expect(permissionsFor("member")).not.toContain("secrets:manage");
		expect(permissionsFor("admin")).not.toContain("secrets:own");
		expect(permissionsFor("owner")).toEqual([...declared.keys()].sort());
		for (const role of ROLES) expect(permissionsFor(role).every(p => declared.has(p))).toBe(true);
		expect(grants("admin", "secrets:manage")).toBe(true);
		expect(grants("admin", "nothing:manage")).toBe(false);
	});

	const spec = (role: string, description?: string) => ({ role, ...(description ? { description } : {}) });
	test.each([
		["a name not <module>:<verb>", { x: { permissions: { manage: spec("admin", "d") } } }, /"manage" is/],
		["a permission without description", { x: { permissions: { "x:read": spec("viewer") } } }, /no description/],
		["an unknown role", { x: { permissions: { "x:read": spec("guest", "d") } } }, /role "guest" is not one of/],
		["permissions that are not an object", { x: { permissions: ["x:read"] } }, /permissions must be an object/],
		[
			"a permission named after another module",
			{
				a: { permissions: { "a:read": spec("viewer", "d") } },
				b: { permissions: { "b:read": spec("viewer", "d"), "a:manage": spec("admin", "d") } }
			},
			/b\.module\.js: permission "a:manage" does not start with "b:": module "b" declares only its own$/
		]
	])("%s is refused when the manifests load", (_what, manifests, message) => {
		expect(() => loadManifests(modulesDir(manifests))).toThrow(message);
	});

	test("a service principal's permissions: the read < write < manage < own ladder within its module, else exact", () => {
		expect(servicePermits(["ai:write"], "ai:read")).toBe(true);
		expect(servicePermits(["ai:write"], "ai:manage")).toBe(false);
		expect(servicePermits(["ai:write"], "secrets:read")).toBe(false);
		expect(servicePermits(["auth:teams-read"], "auth:teams-read")).toBe(true);
		expect(servicePermits(["auth:teams-manage"], "auth:teams-read")).toBe(false);
		expect(servicePermits(["auth:teams-read"], "auth:members-read")).toBe(false);
		expect(servicePermits(["secrets:manage"], "secrets:reveal")).toBe(false);
	});

	test("one permission declared by two modules is refused when the table is derived", () => {
		const twice = [
			{ name: "a", permissions: { "a:read": { description: "d", role: "viewer" as const } } },
			{ name: "b", permissions: { "a:read": { description: "d", role: "admin" as const } } }
		];
		expect(() => derivePermissionTable(twice)).toThrow(
			'permission a:read is declared by both module "a" and module "b"'
		);
	});
});

describe("actions enforce the permission their module declares", () => {
	const auth = (role: Role): AuthInfo => ({
		userId: "u",
		kind: "session",
		organizationId: "o",
		role,
		permissions: []
	});
	let broker: ServiceBroker | undefined;

	beforeEach(() => {
		setConfig(loadConfig({ SERVICES_DIR: FIXTURES_DIR, LOG_LEVEL: "fatal" }));
		broker = new ServiceBroker({ logger: false, middlewares: [AuthzMiddleware] });
	});
	afterEach(async () => {
		await broker?.stop();
	});

	test("a fixture module's actions start and are allowed exactly to the roles its manifest names", async () => {
		broker!.loadService(path.join(DEMO, "demo-permissions.service.ts"));
		await broker!.start();
		expect(permissionTable().declared.get("demo-permissions:write")).toMatchObject({ module: "demo-permissions" });
		const as = (role: Role) => ({ meta: { auth: auth(role) } });
		await expect(broker!.call("demo-permissions.read", {}, as("viewer"))).resolves.toEqual({ ok: "read" });
		await expect(broker!.call("demo-permissions.write", {}, as("viewer"))).rejects.toMatchObject({
			code: 403,
			message: "requires permission demo-permissions:write"
		});
		await expect(broker!.call("demo-permissions.write", {}, as("member"))).resolves.toEqual({ ok: "write" });
	});

	test("an action declaring a permission its module does not declare (another's) is refused at start", async () => {
		broker!.loadService(path.join(DEMO, "undeclared.refused.ts"));
		await expect(broker!.start()).rejects.toThrow(
			'action demo-undeclared.peek declares permission "secrets:read", which module "demo-permissions" does ' +
				"not declare: add it to permissions in " +
				"test/fixtures/services/demo-permissions/demo-permissions.module.ts"
		);
	});

	test("a published action without a permission is refused when its service is created", () => {
		expect(() => broker!.loadService(path.join(DEMO, "unguarded.refused.ts"))).toThrow(
			"action demo-unguarded.open is published but declares no permission"
		);
	});

	test("a service outside any module folder may only use a permission some module declares", async () => {
		broker!.createService({
			name: "stray",
			actions: { go: { permission: "nowhere:read", handler: () => "gone" } }
		} as any);
		const refused = 'action stray.go declares permission "nowhere:read", which no module';
		await expect(broker!.start()).rejects.toThrow(refused);
	});
});
