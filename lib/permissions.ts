// Roles per organization and what they grant. A permission is "<module>:<verb>", declared with its description and
// default role by exactly one module's manifest (services/<module>/<module>.module.ts); which role holds which
// permission is derived from all manifests (derivePermissionTable), so this file names no module.
// Shared with the UI (frontend/src/lib/permissions.ts): nothing here reads files.
export const ROLES = ["owner", "admin", "member", "viewer"] as const;
export type Role = (typeof ROLES)[number];

// Special permission values an action may declare; no manifest declares them.
export const PUBLIC = "public"; // anyone, no token (register, login)
export const AUTHENTICATED = "authenticated"; // any signed-in user, no organization role needed
// The user's account beyond one organization (create an organization): a user's session only, never an API key.
export const ACCOUNT = "account";
export const SPECIAL_PERMISSIONS: readonly string[] = [PUBLIC, AUTHENTICATED, ACCOUNT];

export const PERMISSION_NAME = /^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$/;

// One permission as a manifest declares it. Roles are ordered, so `role` is the lowest role that holds it by
// default and every higher role holds it too: an owner can do all an admin can, and a key capped at a role never
// holds more than that role.
export interface PermissionSpec {
	description: string;
	role: Role;
}

export interface DeclaredPermission extends PermissionSpec {
	name: string;
	module: string;
}

export interface PermissionTable {
	declared: ReadonlyMap<string, DeclaredPermission>;
	// The concrete permissions of each role, sorted.
	byRole: Readonly<Record<Role, readonly string[]>>;
	sets: Readonly<Record<Role, ReadonlySet<string>>>;
}

export function roleRank(role: Role): number {
	return ROLES.length - ROLES.indexOf(role);
}

// The table of every declared permission and the roles holding it. A permission declared twice is refused: each
// belongs to one module, so granting one module's permission never grants another's.
export function derivePermissionTable(
	modules: readonly { name: string; permissions?: Record<string, PermissionSpec> }[]
): PermissionTable {
	const declared = new Map<string, DeclaredPermission>();
	for (const m of modules)
		for (const [name, spec] of Object.entries(m.permissions ?? {})) {
			const other = declared.get(name);
			if (other && other.module !== m.name)
				throw new Error(
					`permission ${name} is declared by both module "${other.module}" and module "${m.name}"`
				);
			declared.set(name, { ...spec, name, module: m.name });
		}
	const names = [...declared.keys()].sort();
	const byRole = {} as Record<Role, string[]>;
	const sets = {} as Record<Role, Set<string>>;
	for (const role of ROLES) {
		byRole[role] = names.filter(n => roleRank(role) >= roleRank(declared.get(n)!.role));
		sets[role] = new Set(byRole[role]);
	}
	return { declared, byRole, sets };
}

export function grantsIn(table: PermissionTable, role: Role | undefined, permission: string): boolean {
	return !!role && !!table.sets[role]?.has(permission);
}

// The caller and the most it may do (its ceiling). auth.resolve makes it from the credentials, it travels in
// ctx.meta to every call made for the request, and the authorization middleware (lib/authz.ts) enforces it.
export interface AuthInfo {
	// None for a service principal.
	userId?: string;
	// A user's signed-in session, an API key acting for its owner, or a service acting for an organization without a
	// user (a job's principal): its permissions are what its module's manifest declares (servicePermissions), and it
	// is accepted only with the service's credential (lib/service-identity.ts).
	kind: "session" | "apiKey" | "service";
	service?: string;
	organizationId?: string;
	// The role in organizationId; for an API key already capped by the key's own role.
	role?: Role;
	// What the role holds (derived from the manifests); the middleware checks the role against the same table.
	permissions: string[];
	// An API key is bound to its organization: it never acts in, creates or lists another one.
	boundOrganizationId?: string;
	apiKeyId?: string;
	sessionId?: string;
	// When the credential stops working, in seconds since the epoch (a token's exp, a key's expires_at).
	expiresAt?: number;
}
