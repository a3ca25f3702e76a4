// notifications: the current organization's items; switching organization empties them (lib/use-crud.ts).
import { defineStore } from "pinia";
import { useCrud } from "@/lib/use-crud";
import { notificationsApi } from "@/api/notifications.api";

export const useNotificationsStore = defineStore("notifications", () => {
	const items = useCrud(notificationsApi);
	return {
		items: items.items,
		loading: items.loading,
		error: items.error,
		load: items.load,
		create: items.create,
		remove: items.remove
	};
});
