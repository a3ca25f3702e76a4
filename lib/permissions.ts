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

export interface AuthInfo {
	userId: string;
	organizationId?: string;
	role?: Role;
	permissions: string[];
	apiKeyId?: string;
}
