// auth module: sessions (/api/auth/register, login, refresh (in lib/api.ts), logout, me, password), invitations,
// organizations (+ members), teams (+ members), API keys. Calls but the session ones act in the organization chosen
// in the switcher (X-Organization-Id, added by lib/api.ts).
import { api, request, type Answer, type Schema } from "@/lib/api";
import type { Role } from "@/lib/permissions";

export type User = Schema<"User">;
export type RegisterResult = Answer<"auth.register">;
export type LoginResult = Answer<"auth.login">;
export type Invitation = Schema<"Invitation">;
export type NewInvitation = Answer<"auth-invitations.create">;
export type InvitationPreview = Schema<"InvitationPreview">;

export const authApi = {
	register: (body: { name: string; email: string; password: string }) =>
		request<RegisterResult>("POST", "/auth/register", { body, auth: false }),
	login: (body: { email: string; password: string }) =>
		request<LoginResult>("POST", "/auth/login", { body, auth: false }),
	logout: () => api.post<Answer<"auth.logout">>("/auth/logout"),
	me: () => api.get<Schema<"Me">>("/auth/me"),
	changePassword: (body: { currentPassword: string; newPassword: string }) =>
		api.post<Answer<"auth.changePassword">>("/auth/password", body, { organization: false }),
	resetPassword: (body: { token: string; password: string }) =>
		request<Answer<"auth.resetPassword">>("POST", "/auth/password/reset", { body, auth: false })
};

const tokenPath = (token: string) => `/auth/invitations/preview/${encodeURIComponent(token)}`;

export const invitationsApi = {
	list: () => api.get<Invitation[]>("/auth/invitations"),
	create: (body: { email: string; role: Role; expiresInDays?: number }) =>
		api.post<NewInvitation>("/auth/invitations", body),
	revoke: (id: string) => api.delete<Invitation>(`/auth/invitations/${encodeURIComponent(id)}`),
	preview: (token: string) => request<InvitationPreview>("GET", tokenPath(token), { auth: false }),
	accept: (token: string) =>
		api.post<Answer<"auth-invitations.accept">>("/auth/invitations/accept", { token }, { organization: false })
};

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
