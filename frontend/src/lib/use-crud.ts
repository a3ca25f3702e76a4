// The two things every module store repeats: the organization-switch guard (an answer that arrives after the user
// switched organization belongs to the old one and is dropped; the store's state is emptied on the switch), and
// list/create/update/remove of one API resource with loading and error state.
import { ref, watch, type Ref } from "vue";
import { useAuthStore } from "@/stores/auth";
import { useRealtimeStore, type ChangeNotice } from "@/stores/realtime";

// Call inside a setup store: `reset` runs on every organization switch; `load` applies an answer only if the
// organization is still the one it was asked for.
export function useOrgScope(reset?: () => void) {
	const auth = useAuthStore();
	if (reset) watch(() => auth.organizationId, reset);
	async function load<T>(fetch: () => Promise<T>, apply: (value: T) => void): Promise<T> {
		const org = auth.organizationId;
		const value = await fetch();
		if (auth.organizationId === org) apply(value);
		return value;
	}
	return { load };
}

// Call inside a setup store: `reload` runs when another member changes `entity` (a service name, e.g. "auth-teams"; the
// socket's live notices). Notices arriving together cause one reload; a failed reload keeps what is shown.
export function useLive(entity: string, reload: (notices: ChangeNotice[]) => unknown) {
	let pending: ChangeNotice[] = [];
	let timer: ReturnType<typeof setTimeout> | undefined;
	useRealtimeStore().onChange(entity, n => {
		pending.push(n);
		clearTimeout(timer);
		timer = setTimeout(() => {
			const batch = pending;
			pending = [];
			void Promise.resolve()
				.then(() => reload(batch))
				.catch(() => undefined);
		}, 100);
	});
}

// What useCrud needs from a module's API file (ai.api.ts `crud()` makes one for a DbMixin table).
export interface CrudSource<T, In> {
	all(): Promise<T[]>;
	create(body: In): Promise<T>;
	update(id: string, body: In): Promise<T>;
	remove(id: string): Promise<unknown>;
	// The service behind it, whose live notices make a loaded list read itself again.
	entity?: string;
}

export interface Crud<T, In> {
	items: Ref<T[] | null>;
	loading: Ref<boolean>;
	error: Ref<string | null>;
	load(): Promise<T[]>;
	create(body: In): Promise<T>;
	update(id: string, body: In): Promise<T>;
	remove(id: string): Promise<void>;
}

// One resource of the current organization: `items` is null until loaded and after a switch; a write reloads the
// list (a remove drops the row), and so does another member's change (useLive); `changed` runs after every write (e.g. to forget what depends on the resource).
export function useCrud<T extends { id: string }, In>(source: CrudSource<T, In>, changed?: () => void): Crud<T, In> {
	const items = ref<T[] | null>(null) as Ref<T[] | null>;
	const loading = ref(false);
	const error = ref<string | null>(null);
	const scope = useOrgScope(() => {
		items.value = null;
		error.value = null;
	});
	// Another member's change: a list already shown is read again (one never opened stays unloaded), and what
	// depends on it learns of the change either way.
	if (source.entity)
		useLive(source.entity, async () => {
			if (items.value) await load();
			changed?.();
		});

	async function load(): Promise<T[]> {
		loading.value = true;
		error.value = null;
		try {
			return await scope.load(
				() => source.all(),
				rows => (items.value = rows)
			);
		} catch (e) {
			error.value = e instanceof Error ? e.message : String(e);
			throw e;
		} finally {
			loading.value = false;
		}
	}

	async function write<R>(fn: () => Promise<R>): Promise<R> {
		const result = await fn();
		changed?.();
		return result;
	}

	return {
		items,
		loading,
		error,
		load,
		create: body =>
			write(async () => {
				const row = await source.create(body);
				await load();
				return row;
			}),
		update: (id, body) =>
			write(async () => {
				const row = await source.update(id, body);
				await load();
				return row;
			}),
		remove: id =>
			write(async () => {
				await source.remove(id);
				items.value = items.value?.filter(r => r.id !== id) ?? null;
			})
	};
}
