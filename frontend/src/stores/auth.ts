// auth: who is signed in (session kept in localStorage), the organizations they belong to and the one this tab
// acts in, and what their role there allows. Everything that needs "the current user/organization" reads it here.
import { defineStore } from "pinia";
import { computed, ref } from "vue";
import { connectSession, refreshSession, type Tokens } from "@/lib/api";
import { AUTHENTICATED, PUBLIC } from "@/lib/permissions";
import { authApi, type User } from "@/api/auth.api";
import { organizationsApi, type Organization } from "@/api/organizations.api";

const SESSION_KEY = "coder-ide.session";
const ORGANIZATION_KEY = "coder-ide.organization";

interface Session {
	user: User;
	accessToken: string;
	refreshToken: string;
	expiresAt: number; // ms epoch of the access token's expiry
}

function readSession(): Session | null {
	try {
		const s = JSON.parse(localStorage.getItem(SESSION_KEY) ?? "null");
		return s && s.accessToken && s.refreshToken && s.user ? s : null;
	} catch {
		return null;
	}
}

function writeSession(s: Session | null) {
	if (s) localStorage.setItem(SESSION_KEY, JSON.stringify(s));
	else localStorage.removeItem(SESSION_KEY);
}

export const useAuthStore = defineStore("auth", () => {
	const session = ref<Session | null>(readSession());
	const organizations = ref<Organization[]>([]);
	const organizationId = ref<string | null>(localStorage.getItem(ORGANIZATION_KEY));
	// Why the last session ended without the user asking (shown on the sign-in page).
	const endedMessage = ref<string | null>(null);

	const user = computed(() => session.value?.user ?? null);
	const accessToken = computed(() => session.value?.accessToken ?? null);
	const isSignedIn = computed(() => session.value !== null);
	const organization = computed(() => organizations.value.find(o => o.id === organizationId.value) ?? null);
	const role = computed(() => organization.value?.role ?? null);

	function can(permission?: string): boolean {
		if (!permission || permission === PUBLIC || permission === AUTHENTICATED) return isSignedIn.value;
		return organization.value?.permissions?.includes(permission) ?? false;
	}

	function setTokens(tokens: Tokens, u: User | undefined = session.value?.user) {
		if (!u) return;
		session.value = {
			user: u,
			accessToken: tokens.accessToken,
			refreshToken: tokens.refreshToken,
			expiresAt: Date.now() + tokens.expiresIn * 1000
		};
		writeSession(session.value);
		scheduleRefresh();
	}

	function setOrganization(id: string | null) {
		organizationId.value = id;
		if (id) localStorage.setItem(ORGANIZATION_KEY, id);
		else localStorage.removeItem(ORGANIZATION_KEY);
	}

	function clear(message: string | null = null) {
		session.value = null;
		organizations.value = [];
		writeSession(null);
		clearTimeout(refreshTimer);
		endedMessage.value = message;
	}

	// localStorage is the source of truth so that a refresh done by another tab is seen at once.
	connectSession({
		accessToken: () => readSession()?.accessToken,
		accessTokenExpiresAt: () => readSession()?.expiresAt,
		refreshToken: () => readSession()?.refreshToken,
		organizationId: () => organizationId.value ?? undefined,
		saveTokens: tokens => setTokens(tokens, readSession()?.user ?? session.value?.user),
		ended: message => clear(message)
	});

	window.addEventListener("storage", e => {
		if (e.key !== SESSION_KEY) return;
		const next = readSession();
		if (!next) return clear("You signed out in another window.");
		session.value = next;
		scheduleRefresh();
	});

	// Renew shortly before expiry, so the live connection (which authenticates once) always holds a valid token.
	let refreshTimer: ReturnType<typeof setTimeout> | undefined;
	function scheduleRefresh() {
		clearTimeout(refreshTimer);
		if (!session.value) return;
		const token = session.value.accessToken;
		const wait = Math.max(5_000, session.value.expiresAt - Date.now() - 60_000);
		refreshTimer = setTimeout(() => refreshSession(token), Math.min(wait, 2 ** 31 - 1));
	}

	// Keeps the organization this browser last worked in while the user still belongs to it.
	async function loadOrganizations(fallbackId: string | null = null) {
		organizations.value = await organizationsApi.listMine();
		if (organization.value) return;
		const fallback =
			organizations.value.find(o => o.id === fallbackId) ??
			organizations.value.find(o => o.personal) ??
			organizations.value[0];
		setOrganization(fallback?.id ?? null);
	}

	async function begin(result: Tokens & { user: User }, defaultOrganizationId: string | null) {
		endedMessage.value = null;
		setTokens(result, result.user);
		await loadOrganizations(defaultOrganizationId);
	}

	async function signUp(form: { name: string; email: string; password: string }) {
		const result = await authApi.register(form);
		setOrganization(result.organization.id);
		await begin(result, result.organization.id);
	}

	async function signIn(form: { email: string; password: string }) {
		const result = await authApi.login(form);
		await begin(result, result.defaultOrganizationId);
	}

	async function signOut() {
		try {
			await authApi.logout();
		} catch {
			// The session is gone locally either way; the server's copy expires on its own.
		}
		clear();
	}

	function switchOrganization(id: string) {
		if (id === organizationId.value || !organizations.value.some(o => o.id === id)) return;
		setOrganization(id);
	}

	async function createOrganization(name: string) {
		const created = await organizationsApi.create(name);
		await loadOrganizations();
		return created;
	}

	// Resolves once a stored session has been checked against the server (the router waits for it).
	const ready: Promise<void> = (async () => {
		if (!session.value) return;
		scheduleRefresh();
		try {
			await loadOrganizations();
		} catch {
			// An ended session was cleared by the api helper; a network failure keeps it for a retry.
		}
	})();

	return {
		session,
		user,
		accessToken,
		isSignedIn,
		organizations,
		organizationId,
		organization,
		role,
		endedMessage,
		ready,
		can,
		signUp,
		signIn,
		signOut,
		loadOrganizations,
		switchOrganization,
		createOrganization
	};
});
