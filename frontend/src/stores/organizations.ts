// organizations: the current organization's members and roles, teams and their members, and API keys.
// Everything here belongs to one organization; switching organization empties it.
import { defineStore } from "pinia";
import { ref } from "vue";
import { useLive, useOrgScope } from "@/lib/use-crud";
import { useAuthStore } from "./auth";
import {
	organizationsApi,
	teamsApi,
	apiKeysApi,
	type ApiKey,
	type Member,
	type Team,
	type TeamMember,
	type TeamRole
} from "@/api/organizations.api";
import { ROLES, roleRank, type Role } from "@/lib/permissions";

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
