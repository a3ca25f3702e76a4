// notifications: every other module's events (consumesAll in the manifest) routed to people (routing.ts): the
// in-app inbox, pushed live to every open tab of the user on any gateway replica (broadcast `gateway.push` to room
// user:<id>), and e-mail and webhook deliveries sent by the worker on every replica (deliveries.ts). The inbox's
// REST is here; channels, templates, preferences and deliveries have services of their own.
import type { Context, Service } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { getDb, acquireDb, releaseDb, type Queryable } from "../../lib/db";
import { tenantSql, organizationSql } from "../../lib/db/tenant";
import { authOf } from "../../lib/authz";
import { moduleSettings } from "../../lib/config";
import { HostPolicy } from "../../lib/egress";
import { broadcast } from "../../lib/events/broadcast";
import { makeEvent, writeManyToOutbox } from "../../lib/events/outbox";
import { forbidden } from "../../lib/errors";
import { pageOf } from "../../lib/response";
import { EventsMixin, type AfterCommit } from "../../mixins/events.mixin";
import { SecretsClientMixin, type SecretRef } from "../../mixins/secrets-client.mixin";
import type { ServiceIdentity } from "../../mixins/service-identity.mixin";
import manifest from "./notifications.module";
import type { AnyEvent, ChannelKind } from "./catalog";
import { routeEvent, wantedOffByDefault, type InboxRow } from "./routing";
import { renderWording, type Wording } from "./render";
import { DeliveryWorker, type DeliveryRow } from "./deliveries";
import { SENDERS, type OutboundMessage } from "./channels";
import * as R from "./notifications.responses";
import "./notifications.events";
import "../gateway/gateway.events";

interface Self extends ServiceIdentity {
	worker?: DeliveryWorker;
	policy: HostPolicy;
	resolveSecret(ref: SecretRef): Promise<string>;
	templateOf(tx: Queryable, org: string, type: string, channel: ChannelKind): Promise<Wording | undefined>;
	push(rows: InboxRow[]): Promise<void>;
	sendDelivery(row: DeliveryRow): Promise<void>;
	sendVia(org: string, channelId: string, message: OutboundMessage): Promise<void>;
	recipient(userId: string): Promise<{ email: string; name: string }>;
	tellTabs(user: string, payload: { organizationId: string; ids?: string[]; all?: boolean }): void;
	userOf(ctx: Context): { org: string; user: string };
}

// What a client sees of a notification (not the coalescing key).
export const shown = (r: InboxRow) => ({
	id: r.id,
	organization_id: r.organization_id,
	event_type: r.event_type,
	critical: r.critical,
	title: r.title,
	body: r.body,
	data: r.data,
	count: r.count,
	read_at: r.read_at,
	created_at: r.created_at,
	updated_at: r.updated_at
});

const NotificationsService: ServiceSchema = {
	name: "notifications",
	mixins: [EventsMixin, SecretsClientMixin],
	dependencies: ["secrets"],
	settings: { rest: "/notifications" },

	actions: {
		// The caller's inbox in the selected organization, newest first.
		list: {
			rest: "GET /",
			permission: "notifications:read",
			params: {
				unread: { type: "boolean", optional: true, convert: true },
				page: { type: "number", integer: true, positive: true, max: 100_000, default: 1, convert: true },
				pageSize: { type: "number", integer: true, positive: true, max: 100, default: 20, convert: true }
			},
			response: pageOf(R.Notification),
			async handler(this: Self, ctx: Context<{ unread?: boolean; page: number; pageSize: number }>) {
				const { user } = this.userOf(ctx);
				const t = tenantSql(ctx);
				const { page, pageSize, unread } = ctx.params;
				const filter = `organization_id = $org AND user_id = $1${unread ? " AND read_at IS NULL" : ""}`;
				const [rows, total] = await Promise.all([
					t.rows<InboxRow>(
						`SELECT * FROM notifications_inbox WHERE ${filter} ORDER BY updated_at DESC, id LIMIT $2 OFFSET $3`,
						[user, pageSize, (page - 1) * pageSize]
					),
					t.one<{ n: string }>(`SELECT count(*) AS n FROM notifications_inbox WHERE ${filter}`, [user])
				]);
				const n = Number(total?.n ?? 0);
				return { rows: rows.map(shown), total: n, page, pageSize, totalPages: Math.ceil(n / pageSize) };
			}
		},

		unreadCount: {
			rest: "GET /unread-count",
			permission: "notifications:read",
			response: R.UnreadCount,
			async handler(this: Self, ctx: Context) {
				const { user } = this.userOf(ctx);
				const row = await tenantSql(ctx).one<{ n: string }>(
					"SELECT count(*) AS n FROM notifications_inbox WHERE organization_id = $org AND user_id = $1 AND read_at IS NULL",
					[user]
				);
				return { count: Number(row?.n ?? 0) };
			}
		},

		markRead: {
			rest: "POST /:id/read",
			permission: "notifications:read",
			params: { id: "string" },
			response: R.Notification,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const { user } = this.userOf(ctx);
				const row = await tenantSql(ctx).byId<InboxRow>(
					"notification",
					`UPDATE notifications_inbox SET read_at = coalesce(read_at, now())
					 WHERE id = $1 AND organization_id = $org AND user_id = $2 RETURNING *`,
					ctx.params.id,
					[user]
				);
				this.tellTabs(user, { organizationId: row.organization_id, ids: [row.id] });
				return shown(row);
			}
		},

		markAllRead: {
			rest: "POST /read-all",
			permission: "notifications:read",
			response: R.MarkedRead,
			async handler(this: Self, ctx: Context) {
				const { org, user } = this.userOf(ctx);
				const res = await tenantSql(ctx).query(
					`UPDATE notifications_inbox SET read_at = now()
					 WHERE organization_id = $org AND user_id = $1 AND read_at IS NULL`,
					[user]
				);
				this.tellTabs(user, { organizationId: org, all: true });
				return { count: res.rowCount ?? 0 };
			}
		},

		// The delivery of one of the caller's notifications on each channel.
		deliveries: {
			rest: "GET /:id/deliveries",
			permission: "notifications:read",
			params: { id: "string" },
			response: R.Deliveries,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const { user } = this.userOf(ctx);
				const t = tenantSql(ctx);
				await t.byId(
					"notification",
					"SELECT id FROM notifications_inbox WHERE id = $1 AND organization_id = $org AND user_id = $2",
					ctx.params.id,
					[user]
				);
				return t.rows(
					`SELECT ${R.DELIVERY_COLUMNS} FROM notifications_deliveries d
					 WHERE d.organization_id = $org AND (d.notification_id = $1 OR (d.user_id = $2 AND d.event_id =
					   (SELECT event_id FROM notifications_inbox WHERE id = $1))) ORDER BY d.created_at`,
					[ctx.params.id, user]
				);
			}
		},

		// Internal: a channel's "send a test", run here because only this service may read the channel's secrets.
		sendTest: {
			visibility: "public",
			params: {
				organizationId: "uuid",
				channelId: "uuid",
				userId: { type: "uuid", optional: true } // an e-mail's recipient
			},
			async handler(this: Self, ctx: Context<{ organizationId: string; channelId: string; userId?: string }>) {
				const event = {
					type: "notifications.test",
					id: crypto.randomUUID(),
					time: new Date().toISOString(),
					organizationId: ctx.params.organizationId
				};
				const wording = { subject: "Test notification", body: "Notifications reach you on this channel." };
				const message: OutboundMessage = { deliveryId: `test-${event.id}`, event, count: 1, wording };
				try {
					if (ctx.params.userId) message.to = await this.recipient(ctx.params.userId);
					await this.sendVia(ctx.params.organizationId, ctx.params.channelId, message);
					return { ok: true };
				} catch (err) {
					return { ok: false, error: (err as Error).message };
				}
			}
		}
	},

	channels: {
		// Every channel the manifest's consumesAll expands to: each event routed once (EventsMixin de-duplicates), in
		// batches of one transaction each (one commit for many events: routing is a few small statements per event).
		"*": {
			group: "notifications",
			batch: { max: 100, ms: 10 },
			async handler(this: Self, events: AnyEvent[], tx: Queryable, afterCommit: AfterCommit) {
				const { coalesceMs } = moduleSettings(manifest);
				const inbox: InboxRow[] = [];
				let deliveries = false;
				const wanted = await wantedOffByDefault(tx, events);
				for (const event of events) {
					const org = (event as { organizationId?: string }).organizationId;
					if (!org) continue;
					const routed = await routeEvent(tx, event, {
						coalesceMs,
						wanted,
						templates: (type, channel) => this.templateOf(tx, org, type, channel)
					});
					inbox.push(...routed.inbox);
					deliveries ||= !!routed.deliveries;
				}
				afterCommit(() => {
					// Best effort: the notification is stored; a page that missed the push reads it on its next load.
					if (inbox.length)
						this.push(inbox).catch(err =>
							this.logger.warn(`live push of notifications failed: ${(err as Error).message}`)
						);
					if (deliveries) this.worker?.kick();
				});
			}
		}
	},

	methods: {
		userOf(this: Self, ctx: Context) {
			const auth = authOf(ctx);
			if (!auth?.userId || !auth.organizationId) throw forbidden("notifications belong to a signed-in user");
			return { org: auth.organizationId, user: auth.userId };
		},

		async templateOf(this: Self, tx: Queryable, org: string, type: string, channel: ChannelKind) {
			const { rows } = await tx.query<Wording & { channel: ChannelKind }>(
				`SELECT channel, subject, body FROM notifications_templates
				 WHERE organization_id = $1 AND event_type = $2 AND channel = ANY($3::text[])`,
				[org, type, channel === "in_app" ? ["in_app"] : [channel, "in_app"]]
			);
			return rows.find(r => r.channel === channel) ?? rows[0];
		},

		// Each user's open tabs, on whichever gateway replica they are, get the notification and the unread count.
		async push(this: Self, rows: InboxRow[]) {
			for (const row of rows) {
				const unread = await organizationSql(row.organization_id).one<{ n: string }>(
					"SELECT count(*) AS n FROM notifications_inbox WHERE organization_id = $org AND user_id = $1 AND read_at IS NULL",
					[row.user_id]
				);
				await broadcast(this.broker, "gateway.push", {
					room: `user:${row.user_id}`,
					event: "notification",
					payload: {
						organizationId: row.organization_id,
						notification: shown(row),
						unread: Number(unread?.n ?? 0)
					}
				});
			}
		},

		// The user's other tabs drop their unread marks.
		tellTabs(this: Self, user: string, payload: { organizationId: string; ids?: string[]; all?: boolean }) {
			broadcast(this.broker, "gateway.push", {
				room: `user:${user}`,
				event: "notifications.read",
				payload
			}).catch(err => this.logger.warn(`notifications.read not pushed: ${(err as Error).message}`));
		},

		// Users are the platform's core table (migrations/platform).
		async recipient(this: Self, userId: string) {
			const db = await getDb();
			const user = (
				await db.query<{ email: string; name: string }>("SELECT email, name FROM users WHERE id = $1", [userId])
			).rows[0];
			if (!user) throw new Error("the recipient no longer exists");
			return user;
		},

		async sendVia(this: Self, org: string, channelId: string, message: OutboundMessage) {
			const channel = await organizationSql(org).one<{ kind: "email" | "webhook"; config: unknown }>(
				"SELECT kind, config FROM notifications_channels WHERE id = $1 AND organization_id = $org",
				[channelId]
			);
			if (!channel) throw new Error("the channel was removed");
			const sender = SENDERS[channel.kind];
			await sender.send(sender.check(channel.config), message, {
				policy: this.policy,
				secret: ref => this.resolveSecret({ organizationId: org, ...ref })
			});
		},

		// One e-mail or webhook delivery, worded at send time (a digest carries its final count).
		async sendDelivery(this: Self, row: DeliveryRow) {
			if (!row.channel_id) throw new Error("the channel was removed");
			const db = await getDb();
			const own = await this.templateOf(db, row.organization_id, row.event_type, row.channel);
			const wording = await renderWording(row.event, row.count, own);
			const message: OutboundMessage = { deliveryId: row.id, event: row.event, count: row.count, wording };
			if (row.channel === "email") message.to = await this.recipient(row.user_id!);
			await this.sendVia(row.organization_id, row.channel_id, message);
		}
	},

	created(this: Service) {
		(this as Self).policy = new HostPolicy(moduleSettings(manifest).allowedPrivateHosts, {
			variable: "NOTIFICATIONS_ALLOWED_PRIVATE_HOSTS"
		});
	},

	async started(this: Service) {
		const self = this as Self;
		const s = moduleSettings(manifest);
		const db = await acquireDb();
		self.worker = new DeliveryWorker(db, {
			pollMs: s.pollMs,
			retryBaseMs: s.retryBaseMs,
			maxAttempts: s.maxAttempts,
			send: row => self.sendDelivery(row),
			failed: async (tx, row) => {
				const event = makeEvent("notifications.delivery.failed", {
					organizationId: row.organization_id,
					deliveryId: row.id,
					channel: row.channel,
					channelId: row.channel_id,
					eventType: row.event_type,
					attempts: row.attempts
				});
				await writeManyToOutbox(tx, [event]);
			},
			warn: m => this.logger.warn(m)
		});
		self.worker.start();
	},

	async stopped(this: Service) {
		const self = this as Self;
		await self.worker?.stop();
		if (self.worker) await releaseDb();
		self.worker = undefined;
	}
};

export default NotificationsService;
