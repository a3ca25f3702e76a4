// Routing one event, inside the consumer's transaction (so a redelivered event routes once, with its id recorded):
// who hears of it, on which channels, coalesced with what came before.
//   recipients: an event that names a user (userId, or a usage limit of scope "user") goes to that user; an
//     organization-level event to the members whose role holds the type's permission (catalog.ts; e.g. usage
//     events to holders of usage:manage). A critical event that names a user also goes to those members.
//   channels: in-app and e-mail per the user's preference for the type, else the type's default; critical types
//     ignore preferences and quiet hours. An e-mail channel carries the types it lists, or every type (preferences
//     decide). Webhooks carry the organization's events (the types a webhook lists, or every type that notifies by
//     default), regardless of who is a recipient.
//   coalescing: repeats of a type with a subject (catalog's `coalesce`) within the window raise the count of the
//     unread notification. On e-mail and webhooks the first of a burst goes at once; the repeats within the window
//     join one delivery sent when the window closes (a digest with their count).
import type { Queryable } from "../../lib/db";
import { isUuid } from "../../lib/db/tenant";
import { permissionTable } from "../../lib/authz";
import type { Role } from "../../lib/permissions";
import { kindOf, notifiesByDefault, type AnyEvent, type UserChannel } from "./catalog";
import { quietUntil } from "./quiet-hours";
import { renderWording, type TemplateLookup } from "./render";

export interface InboxRow {
	id: string;
	organization_id: string;
	user_id: string;
	event_type: string;
	critical: boolean;
	title: string;
	body: string;
	data: Record<string, unknown>;
	count: number;
	read_at: string | null;
	created_at: string;
	updated_at: string;
}

export interface Routed {
	// Stored or coalesced in-app notifications, to push to their users' sockets after commit.
	inbox: InboxRow[];
	// Deliveries due now or later (e-mail, webhook): the worker is kicked after commit.
	deliveries: number;
}

interface Member {
	user_id: string;
	role: Role;
}

// The user an event is about, if any.
export function subjectUser(e: Record<string, unknown>): string | undefined {
	if (isUuid(e.userId)) return e.userId;
	if (e.scope === "user" && isUuid(e.subjectId)) return e.subjectId;
	return undefined;
}

export function recipientsOf(e: Record<string, unknown> & { type: string }, members: Member[]): string[] {
	const kind = kindOf(e.type);
	const subject = subjectUser(e);
	const byRole = permissionTable().byRole;
	// A permission no module declares (a type of a module without a manage permission): owners and admins.
	const known = Object.values(byRole).some(ps => ps.includes(kind.permission ?? ""));
	const allowed = (role: Role) =>
		known ? byRole[role].includes(kind.permission!) : role === "owner" || role === "admin";
	const out = new Set<string>();
	if (subject && members.some(m => m.user_id === subject)) out.add(subject);
	if (!subject || kind.critical) for (const m of members) if (allowed(m.role)) out.add(m.user_id);
	return [...out];
}

export interface RouteOptions {
	coalesceMs: number;
	templates: TemplateLookup;
	now?: Date;
	// Which off-by-default types anyone wants, decided for a whole batch (wantedOffByDefault); else asked per event.
	wanted?: Set<string>;
}

const wantedKey = (org: string, type: string) => `${org.toLowerCase()}|${type}`;

// Of a batch's events of types off by default, which (organization, type) pairs anyone wants (a preference that
// turns the type on, or a channel listing it): one query for the batch, where routing asked once per event.
export async function wantedOffByDefault(tx: Queryable, events: AnyEvent[]): Promise<Set<string>> {
	const pairs = new Map<string, [string, string]>();
	for (const event of events) {
		const { organizationId: org, type } = event as { organizationId?: unknown; type: string };
		if (isUuid(org) && !notifiesByDefault(type)) pairs.set(wantedKey(org, type), [org, type]);
	}
	if (!pairs.size) return new Set();
	const { rows } = await tx.query<{ org: string; type: string }>(
		`SELECT w.org::text AS org, w.type FROM unnest($1::uuid[], $2::text[]) AS w(org, type)
		 WHERE EXISTS (SELECT 1 FROM notifications_preferences p
		               WHERE p.organization_id = w.org AND p.event_type = w.type AND p.enabled)
		    OR EXISTS (SELECT 1 FROM notifications_channels c
		               WHERE c.organization_id = w.org AND c.enabled AND w.type = ANY(c.event_types))`,
		[[...pairs.values()].map(p => p[0]), [...pairs.values()].map(p => p[1])]
	);
	return new Set(rows.map(r => wantedKey(r.org, r.type)));
}

export async function routeEvent(tx: Queryable, event: AnyEvent, o: RouteOptions): Promise<Routed> {
	const e = event as Record<string, unknown> & { type: string; id: string };
	const org = e.organizationId;
	const routed: Routed = { inbox: [], deliveries: 0 };
	if (!isUuid(org) || !isUuid(e.id)) return routed;
	const kind = kindOf(e.type);
	const byDefault = notifiesByDefault(e.type);

	// A type off by default: does anyone here want it?
	if (!byDefault && o.wanted) {
		if (!o.wanted.has(wantedKey(org, e.type))) return routed;
	} else if (!byDefault) {
		const wanted = await tx.query(
			`SELECT 1 FROM notifications_preferences WHERE organization_id = $1 AND event_type = $2 AND enabled
			 UNION ALL SELECT 1 FROM notifications_channels WHERE organization_id = $1 AND enabled AND $2 = ANY(event_types)
			 LIMIT 1`,
			[org, e.type]
		);
		if (!wanted.rows.length) return routed;
	}

	const channels = (
		await tx.query<{ id: string; kind: "email" | "webhook"; event_types: string[] }>(
			`SELECT id, kind, event_types FROM notifications_channels WHERE organization_id = $1 AND enabled
			 ORDER BY created_at`,
			[org]
		)
	).rows.filter(c => (c.event_types.length ? c.event_types.includes(e.type) : c.kind === "email" || byDefault));
	const email = channels.find(c => c.kind === "email");
	const webhooks = channels.filter(c => c.kind === "webhook");

	// Memberships are the platform's core tables (migrations/platform), not another module's.
	const members = (
		await tx.query<Member>("SELECT user_id, role FROM organization_members WHERE organization_id = $1", [org])
	).rows;
	const users = recipientsOf(e, members);
	const prefs = users.length
		? (
				await tx.query<{ user_id: string; channel: UserChannel; enabled: boolean }>(
					`SELECT user_id, channel, enabled FROM notifications_preferences
					 WHERE organization_id = $1 AND event_type = $2 AND user_id = ANY($3::uuid[])`,
					[org, e.type, users]
				)
			).rows
		: [];
	const wants = (user: string, channel: UserChannel) =>
		kind.critical ||
		(prefs.find(p => p.user_id === user && p.channel === channel)?.enabled ?? kind.defaults[channel]);

	const now = o.now ?? new Date();
	const coalesceKey = kind.coalesce && o.coalesceMs > 0 ? `${e.type}|${kind.coalesce(e)}` : null;
	const inAppWording = users.some(u => wants(u, "in_app")) ? await o.templates(e.type, "in_app") : undefined;

	for (const user of users) {
		if (wants(user, "in_app")) routed.inbox.push(await storeInApp(tx, e, user, coalesceKey, o, inAppWording, now));
		if (email && wants(user, "email")) {
			const quiet = kind.critical ? undefined : await quietUntil(tx, org, user, now);
			const to = { channel: "email" as const, channelId: email.id, userId: user };
			await queueDelivery(tx, e, to, coalesceKey, o, now, quiet);
			routed.deliveries++;
		}
	}
	for (const hook of webhooks) {
		await queueDelivery(tx, e, { channel: "webhook", channelId: hook.id, userId: null }, coalesceKey, o, now);
		routed.deliveries++;
	}
	return routed;
}

async function storeInApp(
	tx: Queryable,
	e: Record<string, unknown> & { type: string; id: string },
	user: string,
	coalesceKey: string | null,
	o: RouteOptions,
	own: Awaited<ReturnType<TemplateLookup>>,
	now: Date
): Promise<InboxRow> {
	const kind = kindOf(e.type);
	if (coalesceKey) {
		// Events of one subject are handled side by side (replicas, prefetch): one at a time per user and key.
		await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`notifications|${user}|${coalesceKey}`]);
		const open = (
			await tx.query<{ id: string; count: number }>(
				`SELECT id, count FROM notifications_inbox
				 WHERE organization_id = $1 AND user_id = $2 AND coalesce_key = $3 AND read_at IS NULL
				   AND created_at > $4::timestamptz - ($5 || ' milliseconds')::interval
				 ORDER BY created_at DESC LIMIT 1 FOR UPDATE`,
				[e.organizationId, user, coalesceKey, now.toISOString(), String(o.coalesceMs)]
			)
		).rows[0];
		if (open) {
			const w = await renderWording(e, open.count + 1, own);
			const { rows } = await tx.query<InboxRow>(
				`UPDATE notifications_inbox SET count = count + 1, data = $2, title = $3, body = $4, updated_at = now()
				 WHERE id = $1 RETURNING *`,
				[open.id, JSON.stringify(e), w.subject, w.body]
			);
			await tx.query(
				"UPDATE notifications_deliveries SET count = count + 1, event = $2, updated_at = now() WHERE notification_id = $1",
				[open.id, JSON.stringify(e)]
			);
			return rows[0];
		}
	}
	const w = await renderWording(e, 1, own);
	const { rows } = await tx.query<InboxRow>(
		`INSERT INTO notifications_inbox (organization_id, user_id, event_id, event_type, critical, title, body, data,
		 coalesce_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		 ON CONFLICT (user_id, event_id) DO UPDATE SET updated_at = notifications_inbox.updated_at RETURNING *`,
		[e.organizationId, user, e.id, e.type, !!kind.critical, w.subject, w.body, JSON.stringify(e), coalesceKey]
	);
	// In-app is delivered by being stored; the push to open tabs is best effort on top.
	await tx.query(
		`INSERT INTO notifications_deliveries (organization_id, notification_id, channel, user_id, event_id, event_type,
		 event, status, attempts, sent_at) VALUES ($1, $2, 'in_app', $3, $4, $5, $6, 'sent', 1, now())`,
		[e.organizationId, rows[0].id, user, e.id, e.type, JSON.stringify(e)]
	);
	return rows[0];
}

async function queueDelivery(
	tx: Queryable,
	e: Record<string, unknown> & { type: string; id: string },
	to: { channel: "email" | "webhook"; channelId: string; userId: string | null },
	coalesceKey: string | null,
	o: RouteOptions,
	now: Date,
	notBefore?: Date
) {
	let due = now;
	if (coalesceKey) {
		const key = `notifications|${to.channelId}|${to.userId}|${coalesceKey}`;
		await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [key]);
		// A digest still waiting for its window to close (never tried, not claimed): it carries this event too.
		const joined = await tx.query(
			`UPDATE notifications_deliveries SET count = count + 1, event = $5, updated_at = now()
			 WHERE organization_id = $1 AND channel_id = $2 AND user_id IS NOT DISTINCT FROM $3 AND coalesce_key = $4
			   AND status = 'pending' AND attempts = 0 AND claimed_until IS NULL AND next_attempt_at > $6`,
			[e.organizationId, to.channelId, to.userId, coalesceKey, JSON.stringify(e), now.toISOString()]
		);
		if (joined.rowCount) return;
		// The first of a burst goes at once; what follows within the window waits for it to close, as one digest.
		const recent = (
			await tx.query<{ created_at: Date }>(
				`SELECT created_at FROM notifications_deliveries
				 WHERE organization_id = $1 AND channel_id = $2 AND user_id IS NOT DISTINCT FROM $3 AND coalesce_key = $4
				   AND created_at > $5::timestamptz - ($6 || ' milliseconds')::interval
				 ORDER BY created_at DESC LIMIT 1`,
				[e.organizationId, to.channelId, to.userId, coalesceKey, now.toISOString(), String(o.coalesceMs)]
			)
		).rows[0];
		if (recent) due = new Date(new Date(recent.created_at).getTime() + o.coalesceMs);
	}
	if (notBefore && notBefore > due) due = notBefore;
	await tx.query(
		`INSERT INTO notifications_deliveries (organization_id, channel_id, channel, user_id, event_id, event_type, event,
		 coalesce_key, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		[
			e.organizationId,
			to.channelId,
			to.channel,
			to.userId,
			e.id,
			e.type,
			JSON.stringify(e),
			coalesceKey,
			due.toISOString()
		]
	);
}
