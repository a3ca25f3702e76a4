// The one HTTP helper every module's `<module>.api.ts` uses: JSON in and out, the session's bearer token and
// X-Organization-Id, one silent token refresh on a 401, and the platform's error shape
// `{ error: { code, message, fields? } }` turned into an ApiError that forms can show next to the named fields.

import type { components, operations } from "@/api/schema";
import { readableFieldMessage } from "./field-message";

// Types of the API's answers, generated from its OpenAPI document (npm run api-types): a named shape, or what one
// operation (its action's name) answers.
export type Schema<N extends keyof components["schemas"]> = components["schemas"][N];
export type Answer<Op extends keyof operations> = operations[Op] extends {
	responses: { 200: { content: { "application/json": infer T } } };
}
	? T
	: never;

export type Tokens = Schema<"Tokens">;

// What the helper needs from whoever owns the session (the auth store); kept as hooks to avoid an import cycle.
export interface SessionHooks {
	accessToken(): string | undefined;
	// When the access token expires (ms epoch, by this browser's clock when it was received).
	accessTokenExpiresAt(): number | undefined;
	refreshToken(): string | undefined;
	organizationId(): string | undefined;
	saveTokens(tokens: Tokens): void;
	ended(message: string): void;
}

interface WireError {
	code?: string;
	message?: string;
	fields?: { field: string; message: string }[];
}

export class ApiError extends Error {
	readonly code: string;
	readonly status: number;
	// Field name -> readable message, e.g. { password: "Password must be at least 10 characters long." }
	readonly fields: Record<string, string>;

	constructor(status: number, error: WireError = {}) {
		const fields: Record<string, string> = {};
		for (const f of error.fields ?? []) fields[f.field] ??= readableFieldMessage(f.field, f.message);
		const named = Object.values(fields);
		// The validator's own summary ("Parameters validation error!") says less than the fields do.
		const message = named.length ? named.join(" ") : error.message || `Request failed (${status})`;
		// Server messages are lower-case phrases ("invalid email or password"); shown alone they read as sentences.
		super(message.charAt(0).toUpperCase() + message.slice(1));
		this.name = "ApiError";
		this.status = status;
		this.code = error.code ?? "ERROR";
		this.fields = fields;
	}
}

export function toApiError(status: number, error: WireError | undefined) {
	return new ApiError(status, error);
}

let hooks: SessionHooks | undefined;

export function connectSession(h: SessionHooks) {
	hooks = h;
}

type Query = Record<string, string | number | boolean | undefined | null>;

interface RequestOptions {
	body?: unknown;
	query?: Query;
	// false for register/login/refresh: no bearer token, and a 401 is an answer, not an expired token.
	auth?: boolean;
	// false for calls about the user rather than one organization (listing their organizations).
	organization?: boolean;
}

function url(path: string, query?: Query) {
	const qs = new URLSearchParams();
	for (const [k, v] of Object.entries(query ?? {}))
		if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
	const s = qs.toString();
	return `/api${path}${s ? `?${s}` : ""}`;
}

async function send(method: string, path: string, opts: RequestOptions, token: string | undefined): Promise<Response> {
	const headers: Record<string, string> = { Accept: "application/json" };
	if (opts.body !== undefined) headers["Content-Type"] = "application/json";
	if (opts.auth !== false && token) {
		headers.Authorization = `Bearer ${token}`;
		const org = opts.organization === false ? undefined : hooks?.organizationId();
		if (org) headers["X-Organization-Id"] = org;
	}
	try {
		return await fetch(url(path, opts.query), {
			method,
			headers,
			body: opts.body === undefined ? undefined : JSON.stringify(opts.body)
		});
	} catch {
		throw new ApiError(0, {
			code: "NETWORK",
			message: "Cannot reach the server. Check your connection and try again."
		});
	}
}

async function parse<T>(res: Response): Promise<T> {
	const text = await res.text();
	let body: any;
	try {
		body = text ? JSON.parse(text) : undefined;
	} catch {
		body = undefined;
	}
	if (res.ok) return body as T;
	throw new ApiError(res.status, body?.error ?? { code: `HTTP_${res.status}`, message: res.statusText || undefined });
}

// Renewed this long before it expires, so no request goes out with a token the server is about to refuse.
const EXPIRY_MARGIN_MS = 30_000;

// True when the stored access token has expired or is about to (a tab reopened the next day): renew it first
// instead of earning a 401 (a request) or a refused handshake (the live connection).
export function accessTokenExpiring(): boolean {
	const expiresAt = hooks?.accessTokenExpiresAt();
	return expiresAt !== undefined && expiresAt - Date.now() < EXPIRY_MARGIN_MS;
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
	let token = opts.auth === false ? undefined : hooks?.accessToken();
	if (token && accessTokenExpiring() && (await refreshSession(token))) token = hooks?.accessToken();
	let res = await send(method, path, opts, token);
	if (res.status === 401 && token && (await refreshSession(token)))
		res = await send(method, path, opts, hooks?.accessToken());
	return parse<T>(res);
}

// Saves what GET path answers (a CSV export) as a file, with the session's credentials like any call.
export async function download(path: string, query: Query, filename: string): Promise<void> {
	const token = hooks?.accessToken();
	let res = await send("GET", path, { query }, token);
	if (res.status === 401 && token && (await refreshSession(token)))
		res = await send("GET", path, { query }, hooks?.accessToken());
	if (!res.ok) await parse(res);
	const href = URL.createObjectURL(await res.blob());
	const a = Object.assign(document.createElement("a"), { href, download: filename });
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(href), 10_000);
}

export const api = {
	get: <T>(path: string, query?: Query, opts: Omit<RequestOptions, "query"> = {}) =>
		request<T>("GET", path, { ...opts, query }),
	post: <T>(path: string, body: unknown = {}, opts: Omit<RequestOptions, "body"> = {}) =>
		request<T>("POST", path, { ...opts, body }),
	patch: <T>(path: string, body: unknown) => request<T>("PATCH", path, { body }),
	put: <T>(path: string, body: unknown) => request<T>("PUT", path, { body }),
	delete: <T>(path: string) => request<T>("DELETE", path)
};

// Refresh tokens rotate and a reused one ends the whole session, so exactly one refresh may be in flight:
// one promise per tab, and a Web Lock across tabs (the tab that waited sees the other's new token and stops).
let refreshing: Promise<boolean> | undefined;

export function refreshSession(staleAccessToken: string | undefined): Promise<boolean> {
	refreshing ??= withLock("coder-ide.refresh", () => doRefresh(staleAccessToken)).finally(
		() => (refreshing = undefined)
	);
	return refreshing;
}

async function doRefresh(staleAccessToken: string | undefined): Promise<boolean> {
	if (!hooks) return false;
	const current = hooks.accessToken();
	if (current && current !== staleAccessToken) return true;
	const refreshToken = hooks.refreshToken();
	if (!refreshToken) return false;
	let res: Response;
	try {
		res = await send("POST", "/auth/refresh", { body: { refreshToken }, auth: false }, undefined);
	} catch {
		return false; // offline: keep the session; the caller sees its 401
	}
	if (!res.ok) {
		hooks.ended(
			res.status === 401
				? "Your session has ended. Please sign in again."
				: "Could not renew your session. Please sign in again."
		);
		return false;
	}
	hooks.saveTokens(await res.json());
	return true;
}

async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
	const locks = typeof navigator !== "undefined" ? (navigator as any).locks : undefined;
	return locks ? locks.request(name, fn) : fn();
}

// moleculer-db's `list` page.
export interface Page<T> {
	rows: T[];
	total: number;
	page: number;
	pageSize: number;
	totalPages: number;
}

// The generic CRUD of one DbMixin table under /api<path>: list pages of at most 100 rows.
export function crud<T, In>(path: string) {
	const one = (id: string) => `${path}/${encodeURIComponent(id)}`;
	return {
		// The service's name ("/ai/providers" -> "ai-providers"): routes and services are named alike.
		entity: path.slice(1).replace(/\//g, "-"),
		list: (page = 1) => api.get<Page<T>>(path, { page, pageSize: 100, sort: "created_at" }),
		async all(): Promise<T[]> {
			const first = await api.get<Page<T>>(path, { page: 1, pageSize: 100, sort: "created_at" });
			const rows = [...first.rows];
			for (let p = 2; p <= first.totalPages; p++)
				rows.push(...(await api.get<Page<T>>(path, { page: p, pageSize: 100, sort: "created_at" })).rows);
			return rows;
		},
		get: (id: string) => api.get<T>(one(id)),
		create: (body: In) => api.post<T>(path, body),
		update: (id: string, body: In) => api.patch<T>(one(id), body),
		remove: (id: string) => api.delete<T>(one(id))
	};
}
