// Authorization middleware: every published action declares `permission`; the check runs where the action runs,
// so REST, socket and REPL callers meet the same rule. Actions for other services only use visibility "public".
// The caller's ceiling (lib/permissions.ts AuthInfo) is enforced here for every action, so new modules inherit it.
import type { Context, Middleware } from "moleculer";
import { grants, PUBLIC, AUTHENTICATED, ACCOUNT, AuthInfo, Role, roleRank } from "./permissions";
import { forbidden, unauthorized } from "./errors";

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

	localAction(handler: any, action: any) {
		const permission: string | undefined = action.permission;
		if (!permission || permission === PUBLIC) return handler;
		return async function authzHandler(ctx: Context<any, any>) {
			const auth = authOf(ctx);
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

