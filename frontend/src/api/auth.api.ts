// auth module, sessions: /api/auth/register, login, refresh (in lib/api.ts), logout, me.
import { api, request, type Answer, type Schema } from "@/lib/api";

export type User = Schema<"User">;
export type RegisterResult = Answer<"auth.register">;
export type LoginResult = Answer<"auth.login">;

export const authApi = {
	register: (body: { name: string; email: string; password: string }) =>
		request<RegisterResult>("POST", "/auth/register", { body, auth: false }),
	login: (body: { email: string; password: string }) =>
		request<LoginResult>("POST", "/auth/login", { body, auth: false }),
	logout: () => api.post<Answer<"auth.logout">>("/auth/logout"),
	me: () => api.get<Schema<"Me">>("/auth/me")
};
