// auth module, sessions: /api/auth/register, login, refresh (in lib/api.ts), logout, me, password; invitations.
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
