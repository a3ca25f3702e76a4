// Authorization middleware: every published action declares `permission`; the check runs where the action runs,
// so REST, socket and REPL callers meet the same rule. Actions for other services only use visibility "public".
import type { Context, Middleware } from "moleculer";
import { grants, PUBLIC, AUTHENTICATED, AuthInfo } from "./permissions";
import { forbidden, unauthorized } from "./errors";

export function authOf(ctx: Context<any, any>): AuthInfo | undefined {
	return (ctx.meta as any).auth;
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
			if (permission !== AUTHENTICATED) {
				if (!auth.organizationId) throw forbidden("no organization selected");
				if (!grants(auth.role, permission)) throw forbidden(`requires permission ${permission}`);
			}
			return handler(ctx);
		};
	}
} as Middleware;

