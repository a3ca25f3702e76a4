// Small formatting helpers shared by the secrets module's components.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (s: string) => UUID.test(s);

export function formatDateTime(value: string | null | undefined): string {
	if (!value) return "—";
	return new Date(value).toLocaleString(undefined, {
		year: "numeric",
		month: "short",
		day: "numeric",
		hour: "2-digit",
		minute: "2-digit"
	});
}

// "just now", "5 min ago", "3 h ago", "2 d ago", then the date.
export function timeAgo(value: string | null | undefined, now = Date.now()): string {
	if (!value) return "—";
	const s = Math.round((now - new Date(value).getTime()) / 1000);
	if (s < 45) return "just now";
	if (s < 3600) return `${Math.max(1, Math.round(s / 60))} min ago`;
	if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
	if (s < 7 * 86_400) return `${Math.round(s / 86_400)} d ago`;
	return new Date(value).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

// "db, core ,  db" -> ["db", "core"]
export function parseTags(text: string): string[] {
	return [
		...new Set(
			text
				.split(",")
				.map(t => t.trim())
				.filter(Boolean)
		)
	];
}

export const sameTags = (a: string[], b: string[]) => a.length === b.length && a.every((t, i) => t === b[i]);

// A date input's day, as the end of that day in the user's time zone.
export function endOfDay(day: string): string {
	return new Date(`${day}T23:59:59`).toISOString();
}

export const today = () => {
	const d = new Date();
	return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
};

export const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
