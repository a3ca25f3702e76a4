// organizations module: /api/auth/organizations (+ members), /api/auth/teams (+ members), /api/auth/api-keys.
// Every call acts in the organization chosen in the switcher (X-Organization-Id, added by lib/api.ts).
import { api, type Answer, type Schema } from "@/lib/api";
import type { Role } from "@/lib/permissions";

// An organization of the caller's, with their role and what it holds there (derived by the server from the
// modules' manifests).
export type Organization = Answer<"auth-organizations.list">[number];

export type Member = Schema<"Member">;

export type Team = Schema<"Team">;

export type TeamRole = "lead" | "member";

export type TeamMember = Schema<"TeamMember">;

// parent_id: the key it was made with (a key made with a key never exceeds it), or null.
export type ApiKey = Schema<"ApiKey">;

export interface Page<T> {
	rows: T[];
	total: number;
	page: number;
	pageSize: number;
	totalPages: number;
}

const org = (id: string) => `/auth/organizations/${encodeURIComponent(id)}`;
const team = (id: string) => `/auth/teams/${encodeURIComponent(id)}`;

export const organizationsApi = {
	// Sent without X-Organization-Id: a stale choice (left by another user of this browser) must not fail it.
	listMine: () => api.get<Organization[]>("/auth/organizations", undefined, { organization: false }),
	create: (name: string) => api.post<Organization>("/auth/organizations", { name }),
	update: (id: string, name: string) => api.patch<Organization>(org(id), { name }),
	remove: (id: string) => api.delete<{ id: string; deleted: true }>(org(id)),

	members: (id: string) => api.get<Member[]>(`${org(id)}/members`),
	addMember: (id: string, email: string, role: Role) =>
		api.post<Answer<"auth-organizations.addMember">>(`${org(id)}/members`, { email, role }),
	updateMember: (id: string, userId: string, role: Role) =>
		api.patch<{ userId: string; role: Role }>(`${org(id)}/members/${userId}`, { role }),
	removeMember: (id: string, userId: string) =>
		api.delete<{ userId: string; removed: true }>(`${org(id)}/members/${userId}`)
};

export const teamsApi = {
	list: (query: { search?: string; page?: number; pageSize?: number } = {}) =>
		api.get<Page<Team>>("/auth/teams", { sort: "name", pageSize: 100, ...query }),
	create: (body: { name: string; description?: string }) => api.post<Team>("/auth/teams", body),
	update: (id: string, body: { name?: string; description?: string }) => api.patch<Team>(team(id), body),
	remove: (id: string) => api.delete<Team>(team(id)),
	members: (id: string) => api.get<TeamMember[]>(`${team(id)}/members`),
	addMember: (id: string, userId: string, role: TeamRole) =>
		api.post<{ teamId: string; userId: string; role: TeamRole }>(`${team(id)}/members`, { userId, role }),
	removeMember: (id: string, userId: string) => api.delete<{ removed: true }>(`${team(id)}/members/${userId}`)
};

export const apiKeysApi = {
	list: () => api.get<ApiKey[]>("/auth/api-keys"),
	create: (body: { name: string; role?: Role; expiresInDays?: number }) =>
		api.post<Schema<"ApiKey"> & { key: string }>("/auth/api-keys", body),
	revoke: (id: string) => api.delete<ApiKey>(`/auth/api-keys/${encodeURIComponent(id)}`)
};
