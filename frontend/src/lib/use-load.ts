// What a view shows is loaded when it mounts; a failure becomes the view's load error (shown in place of the data)
// rather than an unhandled rejection.
import { onMounted, ref } from "vue";

export function useLoadOnMount(load: () => Promise<unknown>) {
	const loadError = ref<string | null>(null);
	onMounted(async () => {
		try {
			await load();
		} catch (e: any) {
			loadError.value = e.message;
		}
	});
	return loadError;
}
