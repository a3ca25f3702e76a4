// auth module's stores. useAuthStore: who is signed in (session kept in localStorage), the organizations they belong
// to and the one this tab acts in, and what their role there allows. Everything that needs "the current
// user/organization" reads it here. useOrganizationsStore (below): the current organization's members, teams, keys.
import { defineStore } from "pinia";
import { computed, ref } from "vue";
import { connectSession, refreshSession, type Tokens } from "@/lib/api";
import { AUTHENTICATED, PUBLIC, ROLES, roleRank, type Role } from "@/lib/permissions";
import { useLive, useOrgScope } from "@/lib/use-crud";
import {
	authApi,
	organizationsApi,
	teamsApi,
	apiKeysApi,
	type ApiKey,
	type Member,
	type Organization,
	type Team,
	type TeamMember,
	type TeamRole,
	type User
} from "@/api/auth.api";

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

// useOrganizationsStore: the current organization's members and roles, teams and their members, and API keys.
// Everything here belongs to one organization; switching organization empties it.
export const useOrganizationsStore = defineStore("organizations", () => {
	const auth = useAuthStore();

	const members = ref<Member[] | null>(null);
	const teams = ref<Team[] | null>(null);
	const teamsTotal = ref(0);
	const teamMembers = ref<Record<string, TeamMember[]>>({});
	const apiKeys = ref<ApiKey[] | null>(null);

	function reset() {
		members.value = null;
		teams.value = null;
		teamsTotal.value = 0;
		teamMembers.value = {};
		apiKeys.value = null;
	}
	const scope = useOrgScope(reset);

	function currentOrg(): string {
		if (!auth.organizationId) throw new Error("No organization selected.");
		return auth.organizationId;
	}

	// Applies a loaded result only if the user has not switched organization while it was loading.
	const load = <T>(fetch: () => Promise<T>, apply: (value: T) => void) => (currentOrg(), scope.load(fetch, apply));

	// Roles the current user may hand out: never above their own, and the owner role only by an owner.
	function assignableRoles(): Role[] {
		const mine = auth.role;
		if (!mine) return [];
		return ROLES.filter(r => roleRank(r) <= roleRank(mine) && (r !== "owner" || mine === "owner"));
	}

	const loadMembers = () =>
		load(
			() => organizationsApi.members(currentOrg()),
			v => (members.value = v)
		);

	async function addMember(email: string, role: Role) {
		const added = await organizationsApi.addMember(currentOrg(), email, role);
		await loadMembers();
		return added;
	}

	async function changeRole(userId: string, role: Role) {
		await organizationsApi.updateMember(currentOrg(), userId, role);
		const m = members.value?.find(x => x.userId === userId);
		if (m) m.role = role;
		// The user's own role changed: what the UI offers changes with it.
		if (userId === auth.user?.id) await auth.loadOrganizations();
	}

	async function removeMember(userId: string) {
		await organizationsApi.removeMember(currentOrg(), userId);
		members.value = members.value?.filter(m => m.userId !== userId) ?? null;
		for (const list of Object.values(teamMembers.value))
			list.splice(0, list.length, ...list.filter(m => m.userId !== userId));
		if (userId === auth.user?.id) await auth.loadOrganizations();
	}

	const loadTeams = () =>
		load(
			() => teamsApi.list(),
			page => {
				teams.value = page.rows;
				teamsTotal.value = page.total;
			}
		);

	async function createTeam(name: string, description?: string) {
		const team = await teamsApi.create({ name, ...(description ? { description } : {}) });
		await loadTeams();
		return team;
	}

	async function removeTeam(id: string) {
		await teamsApi.remove(id);
		teams.value = teams.value?.filter(t => t.id !== id) ?? null;
		teamsTotal.value = Math.max(0, teamsTotal.value - 1);
		delete teamMembers.value[id];
	}

	const loadTeamMembers = (teamId: string) =>
		load(
			() => teamsApi.members(teamId),
			v => (teamMembers.value[teamId] = v)
		);

	async function addTeamMember(teamId: string, userId: string, role: TeamRole) {
		await teamsApi.addMember(teamId, userId, role);
		await loadTeamMembers(teamId);
	}

	async function removeTeamMember(teamId: string, userId: string) {
		await teamsApi.removeMember(teamId, userId);
		teamMembers.value[teamId] = (teamMembers.value[teamId] ?? []).filter(m => m.userId !== userId);
	}

	const loadApiKeys = () =>
		load(
			() => apiKeysApi.list(),
			v => (apiKeys.value = v)
		);

	// Resolves with the key itself: the only time it is ever shown.
	async function createApiKey(body: { name: string; role?: Role; expiresInDays?: number }) {
		const created = await apiKeysApi.create(body);
		await loadApiKeys();
		return created;
	}

	// Keys made from the revoked key are revoked with it: the list is read again.
	async function revokeApiKey(id: string) {
		await apiKeysApi.revoke(id);
		await loadApiKeys();
	}

	// Another member's change: what is shown is read again, what was never opened stays unloaded.
	useLive("auth-members", () => members.value && loadMembers());
	useLive("auth-api-keys", () => apiKeys.value && loadApiKeys());
	useLive("auth-teams", async notices => {
		if (teams.value) await loadTeams();
		for (const n of notices) {
			if (n.action === "removed") delete teamMembers.value[n.id];
			else if (teamMembers.value[n.id]) await loadTeamMembers(n.id);
		}
	});

	async function renameOrganization(name: string) {
		await organizationsApi.update(currentOrg(), name);
		await auth.loadOrganizations();
	}

	async function deleteOrganization() {
		await organizationsApi.remove(currentOrg());
		await auth.loadOrganizations();
	}

	return {
		members,
		teams,
		teamsTotal,
		teamMembers,
		apiKeys,
		assignableRoles,
		loadMembers,
		addMember,
		changeRole,
		removeMember,
		loadTeams,
		createTeam,
		removeTeam,
		loadTeamMembers,
		addTeamMember,
		removeTeamMember,
		loadApiKeys,
		createApiKey,
		revokeApiKey,
		renameOrganization,
		deleteOrganization
	};
});
