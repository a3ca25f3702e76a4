// Form state for a submit that calls the API: busy flag, a message for the whole form, and one per named field.
import { reactive, ref } from "vue";
import { ApiError } from "./api";

// `shown` names the fields this form displays; a message about any other field goes to the whole form.
export function useForm(shown: string[] = []) {
	const busy = ref(false);
	const error = ref<string | null>(null);
	const fields = reactive<Record<string, string | undefined>>({});

	function reset() {
		error.value = null;
		for (const k of Object.keys(fields)) delete fields[k];
	}

	// Runs fn and says whether it succeeded; an ApiError's field messages go next to their fields,
	// anything else above the submit button.
	async function submit(fn: () => Promise<unknown>): Promise<boolean> {
		if (busy.value) return false;
		reset();
		busy.value = true;
		try {
			await fn();
			return true;
		} catch (e) {
			const named = e instanceof ApiError ? Object.entries(e.fields) : [];
			const other: string[] = [];
			for (const [k, v] of named) {
				if (shown.includes(k)) fields[k] = v;
				else other.push(v);
			}
			if (!named.length) error.value = e instanceof Error ? e.message : String(e);
			else if (other.length) error.value = other.join(" ");
			return false;
		} finally {
			busy.value = false;
		}
	}

	return { busy, error, fields, submit, reset };
}

export function formatDate(value: string | null | undefined): string {
	if (!value) return "—";
	return new Date(value).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}
