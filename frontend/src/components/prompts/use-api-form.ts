// Form state for the prompts editors: busy, a message for the whole form, and the server's messages by field as
// it names them (`variables[0].name`, `variables.language`), since these forms show fields of nested lists.
import { ref } from "vue";
import { ApiError } from "@/lib/api";

export function useApiForm() {
	const busy = ref(false);
	const error = ref<string | null>(null);
	const fields = ref<Record<string, string | undefined>>({});

	function reset() {
		error.value = null;
		fields.value = {};
	}

	// Runs fn and says whether it succeeded; `shown` says which field names the form displays itself.
	async function submit(fn: () => Promise<unknown>, shown: (field: string) => boolean = () => true) {
		if (busy.value) return false;
		reset();
		busy.value = true;
		try {
			await fn();
			return true;
		} catch (e) {
			const named = e instanceof ApiError ? Object.entries(e.fields) : [];
			fields.value = Object.fromEntries(named.filter(([k]) => shown(k)));
			const other = named.filter(([k]) => !shown(k)).map(([, m]) => m);
			if (!named.length) error.value = e instanceof Error ? e.message : String(e);
			else if (other.length) error.value = other.join(" ");
			return false;
		} finally {
			busy.value = false;
		}
	}
	return { busy, error, fields, submit, reset };
}
