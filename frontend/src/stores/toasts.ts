// toasts: short messages in the corner: results of the user's actions and notifications pushed by the server.
import { defineStore } from "pinia";
import { ref } from "vue";

export type ToastKind = "info" | "success" | "warning" | "error";

export interface Toast {
	id: number;
	kind: ToastKind;
	title: string;
	message?: string;
}

let nextId = 1;

export const useToastsStore = defineStore("toasts", () => {
	const toasts = ref<Toast[]>([]);

	function dismiss(id: number) {
		toasts.value = toasts.value.filter(t => t.id !== id);
	}

	function show(kind: ToastKind, title: string, message?: string, timeoutMs = kind === "error" ? 8000 : 5000) {
		const toast = { id: nextId++, kind, title, message };
		toasts.value = [...toasts.value.slice(-4), toast];
		if (timeoutMs > 0) setTimeout(() => dismiss(toast.id), timeoutMs);
		return toast.id;
	}

	return {
		toasts,
		dismiss,
		show,
		success: (title: string, message?: string) => show("success", title, message),
		error: (title: string, message?: string) => show("error", title, message),
		info: (title: string, message?: string) => show("info", title, message)
	};
});
