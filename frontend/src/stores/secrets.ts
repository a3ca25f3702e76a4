// secrets: the current organization's vault: its settings (environments, versions kept, data key), the secrets of
// one environment, the secret being looked at with its versions, access grants and the audit log. Values are never
// kept here: a revealed value lives only in the component that shows it, for as long as it is shown.
// Switching organization empties everything (lib/use-crud.ts useOrgScope).
import { defineStore } from "pinia";
import { ref } from "vue";
import { useOrgScope } from "@/lib/use-crud";
import {
	secretsApi,
	type AuditEntry,
	type AuditQuery,
	type AuditVerification,
	type Grant,
	type NewGrant,
	type SecretDetail,
	type SecretMeta,
	type VaultSettings
} from "@/api/secrets.api";

export const AUDIT_PAGE = 50;

export const useSecretsStore = defineStore("secrets", () => {
	const settings = ref<VaultSettings | null>(null);
	// The environment the list shows; kept while the user moves between the module's pages.
	const environment = ref<string | null>(null);
	const search = ref("");
	const showDeleted = ref(false);
	const secrets = ref<SecretMeta[] | null>(null);
	const current = ref<SecretDetail | null>(null);
	const grants = ref<Grant[] | null>(null);
	const audit = ref<AuditEntry[] | null>(null);
	const auditComplete = ref(false);
	const verification = ref<AuditVerification | null>(null);
	// id -> name and environment of every secret seen, to name the targets of grants and audit entries.
	const known = ref<Record<string, { name: string; environment: string }>>({});

	function reset() {
		settings.value = null;
		environment.value = null;
		search.value = "";
		showDeleted.value = false;
		secrets.value = null;
		current.value = null;
		grants.value = null;
		audit.value = null;
		auditComplete.value = false;
		verification.value = null;
		known.value = {};
		counts.value = {};
	}
	const scope = useOrgScope(reset);

	// Applies a loaded result only if the user has not switched organization while it was loading.
	const load = scope.load;

	function remember(list: SecretMeta[]) {
		for (const s of list) known.value[s.id] = { name: s.name, environment: s.environment };
	}

	async function loadSettings() {
		await load(
			() => secretsApi.settings(),
			s => {
				settings.value = s;
				if (!environment.value || !s.environments.includes(environment.value))
					environment.value = s.environments[0] ?? null;
			}
		);
	}

	// Only the answer to the latest request is shown, however the responses to fast typing arrive.
	let listRequest = 0;
	async function loadSecrets() {
		const env = environment.value;
		if (!env) return;
		const mine = ++listRequest;
		// The tabs' counts change with whatever changed the list.
		void loadCounts().catch(() => undefined);
		await load(
			() =>
				secretsApi.list({
					environment: env,
					search: search.value.trim() || undefined,
					includeDeleted: showDeleted.value
				}),
			list => {
				remember(list);
				if (mine === listRequest) secrets.value = list;
			}
		);
	}

	// How many live secrets each environment holds, for the tabs.
	const counts = ref<Record<string, number>>({});
	async function loadCounts() {
		await load(
			() => secretsApi.environments(),
			list => (counts.value = Object.fromEntries(list.map(e => [e.environment, e.count])))
		);
	}

	// Every secret of every environment (deleted too): for naming grant and audit targets.
	const loadAllNames = () => load(() => secretsApi.list({ includeDeleted: true }), remember);

	async function loadSecret(id: string) {
		await load(
			() => secretsApi.get(id),
			s => {
				current.value = s;
				remember([s]);
			}
		);
	}

	async function refreshAfter<T extends { id: string }>(result: T): Promise<T> {
		if (current.value?.id === result.id) await loadSecret(result.id);
		await loadSecrets();
		return result;
	}

	const create = async (body: {
		environment: string;
		name: string;
		value: string;
		description?: string;
		tags?: string[];
	}) => refreshAfter(await secretsApi.create(body));
	const update = async (id: string, body: { value?: string; cas?: number; description?: string; tags?: string[] }) =>
		refreshAfter(await secretsApi.update(id, body));
	const rollback = async (id: string, version: number) => refreshAfter(await secretsApi.rollback(id, version));
	const remove = async (id: string) => refreshAfter(await secretsApi.remove(id));
	const restore = async (id: string) => refreshAfter(await secretsApi.restore(id));
	const destroyVersion = async (id: string, version: number) =>
		refreshAfter(await secretsApi.destroyVersion(id, version));

	const loadGrants = () =>
		load(
			() => secretsApi.grants(),
			g => (grants.value = g)
		);

	async function addGrant(body: NewGrant) {
		const g = await secretsApi.grant(body);
		await loadGrants();
		return g;
	}

	async function revokeGrant(id: string) {
		await secretsApi.revokeGrant(id);
		grants.value = grants.value?.filter(g => g.id !== id) ?? null;
	}

	// Newest first, with the filters shown on the page; `more` appends the page before the oldest entry shown.
	const auditFilters = ref<AuditQuery>({});
	async function loadAudit(more = false) {
		const oldest = more && audit.value?.length ? Number(audit.value[audit.value.length - 1].seq) : undefined;
		await load(
			() => secretsApi.audit({ ...auditFilters.value, limit: AUDIT_PAGE, before: oldest }),
			page => {
				audit.value = more ? [...(audit.value ?? []), ...page] : page;
				auditComplete.value = page.length < AUDIT_PAGE;
			}
		);
	}

	const verifyAudit = () =>
		load(
			() => secretsApi.verifyAudit(),
			v => (verification.value = v)
		);

	async function configure(body: { environments?: string[]; maxVersions?: number }) {
		await secretsApi.configure(body);
		await loadSettings();
	}

	async function rotateDataKey() {
		const result = await secretsApi.rotateDataKey();
		await loadSettings();
		return result;
	}

	async function importEnv(body: { environment: string; content: string; overwrite?: boolean }) {
		const result = await secretsApi.importEnv(body);
		if (body.environment === environment.value) await loadSecrets();
		return result;
	}

	const exportEnv = (env: string) => secretsApi.exportEnv(env);

	return {
		settings,
		environment,
		search,
		showDeleted,
		secrets,
		current,
		grants,
		audit,
		auditComplete,
		auditFilters,
		counts,
		loadCounts,
		verification,
		known,
		loadSettings,
		loadSecrets,
		loadAllNames,
		loadSecret,
		create,
		update,
		rollback,
		remove,
		restore,
		destroyVersion,
		loadGrants,
		addGrant,
		revokeGrant,
		loadAudit,
		verifyAudit,
		configure,
		rotateDataKey,
		importEnv,
		exportEnv
	};
});
