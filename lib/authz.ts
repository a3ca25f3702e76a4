// Authorization middleware: every published action declares `permission`; the check runs where the action runs,
// so REST, socket and REPL callers meet the same rule. Actions for other services only use visibility "public".
// The caller's ceiling (lib/permissions.ts AuthInfo) is enforced here for every action, so new modules inherit it.
import path from "path";
import type { Context, Middleware, Service } from "moleculer";
import { getConfig } from "./config";
import { forbidden, unauthorized } from "./errors";
import { loadManifests, manifestOfServiceFile, ModuleManifest, SERVICES_DIR } from "./module";
import {
	ACCOUNT,
	AUTHENTICATED,
	AuthInfo,
	derivePermissionTable,
	grantsIn,
	PermissionTable,
	PUBLIC,
	Role,
	roleRank,
	SPECIAL_PERMISSIONS
} from "./permissions";
import { IDENTITY_META, IdentityError, permissionsBinding, verifierFor } from "./service-identity";

// The platform's modules and, when SERVICES_DIR names another folder (test fixtures), that folder's too.
export function moduleDirs(): string[] {
	return [...new Set([SERVICES_DIR, getConfig().servicesDir ?? SERVICES_DIR])];
}

let table: { servicesDir: string | undefined; table: PermissionTable } | undefined;

// Role → permissions, derived once per process from every manifest (loaded modules or not). Checked on every call:
// only a change of SERVICES_DIR (tests load fixture modules) derives it again.
export function permissionTable(): PermissionTable {
	const servicesDir = getConfig().servicesDir;
	if (!table || table.servicesDir !== servicesDir) {
		const manifests = new Map<string, ModuleManifest>();
		for (const dir of moduleDirs()) for (const m of loadManifests(dir)) manifests.set(m.name, m);
		table = { servicesDir, table: derivePermissionTable([...manifests.values()]) };
	}
	return table.table;
}

export function grants(role: Role | undefined, permission: string): boolean {
	return grantsIn(permissionTable(), role, permission);
}

export function permissionsFor(role: Role): string[] {
	return [...permissionTable().byRole[role]];
}

export function authOf(ctx: Context<any, any>): AuthInfo | undefined {
	return (ctx.meta as any).auth;
}

// An API key (anything but a user's session) acts only inside the organization it is bound to.
function assertInsideBinding(auth: AuthInfo, permission: string) {
	if (auth.kind === "session" && auth.boundOrganizationId === undefined) return;
	if (permission === ACCOUNT)
		throw forbidden("an API key acts only inside its own organization; sign in as the user for this");
	if (auth.organizationId !== auth.boundOrganizationId)
		throw forbidden("this API key belongs to another organization");
}

// Nothing a principal creates or hands out (an API key, a membership) carries a role above its own.
export function assertRoleWithin(auth: AuthInfo, role: Role) {
	if (!auth.role || roleRank(role) > roleRank(auth.role)) {
		const yours = auth.role ? ` (${auth.role})` : "";
		throw forbidden(`cannot grant the role ${role}: it is above your own role${yours}`);
	}
}

const VERBS = ["read", "write", "manage", "own"];

// A service principal holds exactly what its module declares: "ai:write" covers ai's read and write actions; a verb
// outside that ladder ("auth:teams-read") covers only itself.
export function servicePermits(permissions: string[], permission: string): boolean {
	const [mod, verb] = permission.split(":");
	return permissions.some(p => {
		if (p === permission) return true;
		const [m, v] = p.split(":");
		return (m === mod || m === "*") && VERBS.indexOf(v) >= VERBS.indexOf(verb) && VERBS.includes(verb);
	});
}

// Whether the caller holds a permission, for a rule an action enforces inside its handler (a protected label, whose
// content a reader may see): a service principal by its module's declaration, anyone else by their (capped) role.
export function holds(auth: AuthInfo | undefined, permission: string): boolean {
	if (!auth) return false;
	return auth.kind === "service" ? servicePermits(auth.permissions, permission) : grants(auth.role, permission);
}

// A service principal is whatever its sender wrote in meta unless its token proves the service, for this action
// and organization with these permissions: checked here with the root, or by secrets where the root is not held.
async function assertServiceProven(ctx: Context<any, any>, auth: AuthInfo, action: string) {
	const token = ctx.meta[IDENTITY_META];
	const organizationId = auth.organizationId ?? "";
	const binding = permissionsBinding(auth.permissions ?? []);
	let service: string;
	const root = getConfig().serviceIdentityKey;
	if (root) {
		try {
			service = verifierFor(root).verify(token, action, organizationId, binding);
		} catch (err) {
			if (err instanceof IdentityError) throw forbidden(`service principal refused: ${err.message}`);
			throw err;
		}
	} else {
		const params = { token: String(token ?? ""), action, organizationId, binding };
		({ service } = await ctx.broker.call<{ service: string }, typeof params>("secrets.verifyIdentity", params));
	}
	if (service !== auth.service)
		throw forbidden(`service principal refused: the token proves ${service}, not ${auth.service}`);
}

export const AuthzMiddleware: Middleware = {
	name: "Authz",

	// A published action without a permission would be reachable by anyone: refuse to start instead.
	serviceCreated(service: any) {
		if (service.name.startsWith("$")) return;
		for (const [name, action] of Object.entries<any>(service.schema.actions ?? {})) {
			if (!action || typeof action === "function") continue;
			const visibility = action.visibility ?? "published";
			if (visibility === "published" && !action.permission)
				throw new Error(`action ${service.name}.${name} is published but declares no permission`);
		}
	},

	// A published action's permission must be one its module declares (or one of the special values): otherwise
	// OpenAPI and the UI would show a rule no role holds, or another module's. Checked once the service's file is
	// known; a service created from a bare schema (no module folder) may use any declared permission.
	serviceStarting(service: Service) {
		if (service.name.startsWith("$")) return;
		const file = (service as { __filename?: string }).__filename;
		const mod = moduleDirs()
			.map(dir => manifestOfServiceFile(dir, file))
			.find(m => m);
		const declared = permissionTable().declared;
		for (const [name, action] of Object.entries<any>(service.schema.actions ?? {})) {
			const permission = action && typeof action === "object" ? action.permission : undefined;
			if (!permission || SPECIAL_PERMISSIONS.includes(permission)) continue;
			const where = `action ${service.name}.${name} declares permission "${permission}"`;
			if (mod && !mod.permissions?.[permission]) {
				const manifest = path.relative(process.cwd(), path.join(path.dirname(file!), `${mod.name}.module.ts`));
				throw new Error(
					`${where}, which module "${mod.name}" does not declare: add it to permissions in ${manifest}`
				);
			}
			if (!declared.has(permission)) throw new Error(`${where}, which no module's manifest declares`);
		}
	},

	localAction(handler: any, action: any) {
		const permission: string | undefined = action.permission;
		if (!permission || permission === PUBLIC) return handler;
		return async function authzHandler(ctx: Context<any, any>) {
			const auth = authOf(ctx);
			if (auth?.kind === "service") {
				if (
					permission === AUTHENTICATED ||
					permission === ACCOUNT ||
					!servicePermits(auth.permissions, permission)
				)
					throw forbidden(`service ${auth.service} does not declare permission ${permission}`);
				assertInsideBinding(auth, permission);
				await assertServiceProven(ctx, auth, action.name);
				return handler(ctx);
			}
			if (!auth || !auth.userId) throw unauthorized();
			assertInsideBinding(auth, permission);
			if (permission !== AUTHENTICATED && permission !== ACCOUNT) {
				if (!auth.organizationId) throw forbidden("no organization selected");
				if (!grants(auth.role, permission)) throw forbidden(`requires permission ${permission}`);
			}
			return handler(ctx);
		};
	}
} as Middleware;
