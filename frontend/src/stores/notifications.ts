// notifications: the signed-in user's inbox in the current organization (latest page and unread count), kept live by
// the socket's `notification` pushes (from any gateway replica) and `notifications.read` (another tab read them);
// their preferences; and, for admins, the organization's channels and templates.
import { defineStore } from "pinia";
import { ref } from "vue";
import { useAuthStore } from "@/stores/auth";
import { useRealtimeStore } from "@/stores/realtime";
import { useCrud, useOrgScope } from "@/lib/use-crud";
import {
	notificationsApi,
	type Choice,
	type Notification,
	type NotificationPreferences,
	type QuietHours
} from "@/api/notifications.api";

const PAGE = 20;

export const useNotificationsStore = defineStore("notifications", () => {
	const auth = useAuthStore();
	const realtime = useRealtimeStore();
	const items = ref<Notification[] | null>(null);
	const unread = ref(0);
	const preferences = ref<NotificationPreferences | null>(null);
	const { load: scoped } = useOrgScope(() => {
		items.value = null;
		unread.value = 0;
		preferences.value = null;
	});

	async function load() {
		await scoped(
			() => Promise.all([notificationsApi.inbox({ pageSize: PAGE }), notificationsApi.unreadCount()]),
			([page, count]) => {
				items.value = page.rows;
				unread.value = count.count;
			}
		);
	}

	// A new or coalesced notification: first in the list (replacing its older copy), with the server's count.
	realtime.on("notification", (p: { organizationId?: string; notification?: Notification; unread?: number }) => {
		if (!p?.notification || p.organizationId !== auth.organizationId) return;
		if (typeof p.unread === "number") unread.value = p.unread;
		if (items.value)
			items.value = [p.notification, ...items.value.filter(n => n.id !== p.notification!.id)].slice(0, PAGE);
	});
	realtime.on("notifications.read", (p: { organizationId?: string }) => {
		if (p?.organizationId === auth.organizationId) void load();
	});

	async function markRead(id: string) {
		const row = await notificationsApi.markRead(id);
		if (items.value) items.value = items.value.map(n => (n.id === id ? row : n));
		unread.value = (await notificationsApi.unreadCount()).count;
	}

	async function markAllRead() {
		await notificationsApi.markAllRead();
		const now = new Date().toISOString();
		if (items.value) items.value = items.value.map(n => (n.read_at ? n : { ...n, read_at: now }));
		unread.value = 0;
	}

	async function loadPreferences() {
		await scoped(notificationsApi.preferences, p => (preferences.value = p));
	}

	async function savePreferences(body: { preferences?: Choice[]; quietHours?: QuietHours | null }) {
		preferences.value = await notificationsApi.savePreferences(body);
	}

	const channels = useCrud(notificationsApi.channels);
	const templates = useCrud(notificationsApi.templates);

	return {
		items,
		unread,
		preferences,
		load,
		markRead,
		markAllRead,
		loadPreferences,
		savePreferences,
		channels: channels.items,
		channelsLoading: channels.loading,
		channelsError: channels.error,
		loadChannels: channels.load,
		createChannel: channels.create,
		updateChannel: channels.update,
		removeChannel: channels.remove,
		testChannel: notificationsApi.testChannel,
		templates: templates.items,
		loadTemplates: templates.load,
		createTemplate: templates.create,
		updateTemplate: templates.update,
		removeTemplate: templates.remove
	};
});
