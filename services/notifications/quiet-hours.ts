// Quiet hours: a daily span in the user's own time zone (it may run past midnight, 22:00-07:00) during which
// e-mail waits; critical notifications do not.
import type { Queryable } from "../../lib/db";
import { invalid } from "../../lib/errors";

export interface QuietHours {
	timeZone: string;
	start: string; // "HH:MM"
	end: string;
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

export const toMinute = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
export const fromMinute = (m: number) =>
	`${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;

export function checkQuietHours(q: QuietHours): void {
	try {
		new Intl.DateTimeFormat("en-US", { timeZone: q.timeZone });
	} catch {
		throw invalid("quietHours.timeZone", `"${q.timeZone}" is not a time zone (e.g. Europe/Berlin)`);
	}
	for (const f of ["start", "end"] as const)
		if (!HHMM.test(q[f])) throw invalid(`quietHours.${f}`, "must be a time like 22:00");
	if (q.start === q.end) throw invalid("quietHours.end", "must differ from start");
}

// The minute of the day in `timeZone` at `now`.
function minuteIn(timeZone: string, now: Date): number {
	const parts = new Intl.DateTimeFormat("en-US", {
		timeZone,
		hour: "2-digit",
		minute: "2-digit",
		hourCycle: "h23"
	}).formatToParts(now);
	const get = (t: string) => Number(parts.find(p => p.type === t)?.value ?? 0);
	return get("hour") * 60 + get("minute");
}

// When the quiet span around `now` ends, or undefined when `now` is outside it.
export function quietEnd(start: number, end: number, timeZone: string, now: Date): Date | undefined {
	const m = minuteIn(timeZone, now);
	const inside = start < end ? m >= start && m < end : m >= start || m < end;
	if (!inside) return undefined;
	const minutes = (end - m + 1440) % 1440;
	const at = new Date(now.getTime() + minutes * 60_000);
	at.setUTCSeconds(0, 0);
	return at;
}

export async function quietUntil(tx: Queryable, org: string, user: string, now: Date): Promise<Date | undefined> {
	const row = (
		await tx.query<{ time_zone: string; start_minute: number; end_minute: number }>(
			"SELECT time_zone, start_minute, end_minute FROM notifications_quiet_hours WHERE organization_id = $1 AND user_id = $2",
			[org, user]
		)
	).rows[0];
	return row ? quietEnd(row.start_minute, row.end_minute, row.time_zone, now) : undefined;
}
