// Roles per organization and what they grant. A permission is "<module>:<verb>"; verbs rise read < write < manage < own.
export const ROLES = ["owner", "admin", "member", "viewer"] as const;
export type Role = (typeof ROLES)[number];

const VERBS_BY_ROLE: Record<Role, string[]> = {
	viewer: ["read"],
	member: ["read", "write"],
	admin: ["read", "write", "manage"],
	owner: ["read", "write", "manage", "own"]
};

// Special permission values an action may declare.
export const PUBLIC = "public"; // anyone, no token (register, login)
export const AUTHENTICATED = "authenticated"; // any signed-in user, no organization role needed
// The user's account beyond one organization (create an organization): a user's session only, never an API key.
export const ACCOUNT = "account";

export function permissionsFor(role: Role): string[] {
	return VERBS_BY_ROLE[role].map(v => `*:${v}`);
}

export function grants(role: Role | undefined, permission: string): boolean {
	if (!role) return false;
	const verb = permission.split(":")[1];
	return VERBS_BY_ROLE[role].includes(verb);
}

export function roleRank(role: Role): number {
	return ROLES.length - ROLES.indexOf(role);
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
	permissions: string[];
	// An API key is bound to its organization: it never acts in, creates or lists another one.
	boundOrganizationId?: string;
	apiKeyId?: string;
	sessionId?: string;
	// When the credential stops working, in seconds since the epoch (a token's exp, a key's expires_at).
	expiresAt?: number;
}
