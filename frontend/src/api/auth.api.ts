// auth module, sessions: /api/auth/register, login, refresh (in lib/api.ts), logout, me.
import { api, request, type Tokens } from "@/lib/api";
import type { Role } from "@/lib/permissions";

export interface User {
	id: string;
	email: string;
	name: string;
	createdAt: string;
}

export interface RegisterResult extends Tokens {
	user: User;
	organization: { id: string; name: string; slug: string; role: Role };
}

export interface LoginResult extends Tokens {
	user: User;
	defaultOrganizationId: string | null;
}

export const authApi = {
	register: (body: { name: string; email: string; password: string }) => request<RegisterResult>("POST", "/auth/register", { body, auth: false }),
	login: (body: { email: string; password: string }) => request<LoginResult>("POST", "/auth/login", { body, auth: false }),
	logout: () => api.post<{ ok: true }>("/auth/logout"),
	me: () => api.get<{ user: User; organizationId: string | null; role: Role | null }>("/auth/me")
};
