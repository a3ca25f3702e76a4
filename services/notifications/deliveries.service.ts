// notifications-deliveries: the status of every notification on every channel in the organization (in-app, e-mail,
// webhook): pending, retrying (with attempts, the next attempt's time and the last error), sent or failed.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { tenantSql } from "../../lib/db/tenant";
import { isUuid } from "../../lib/db/tenant";
import { invalid } from "../../lib/errors";
import { pageOf } from "../../lib/response";
import * as R from "./notifications.responses";

interface Filter {
	status?: string;
	channel?: string;
	channelId?: string;
	eventType?: string;
	page: number;
	pageSize: number;
}

const NotificationsDeliveriesService: ServiceSchema = {
	name: "notifications-deliveries",
	settings: { rest: "/notifications/deliveries" },

	actions: {
		list: {
			rest: "GET /",
			permission: "notifications:manage",
			params: {
				status: { type: "enum", values: ["pending", "retrying", "sent", "failed"], optional: true },
				channel: { type: "enum", values: ["in_app", "email", "webhook"], optional: true },
				channelId: { type: "string", optional: true },
				eventType: { type: "string", max: 200, optional: true },
				page: { type: "number", integer: true, positive: true, max: 100_000, default: 1, convert: true },
				pageSize: { type: "number", integer: true, positive: true, max: 100, default: 50, convert: true }
			},
			response: pageOf(R.Delivery),
			async handler(ctx: Context<Filter>) {
				const p = ctx.params;
				if (p.channelId !== undefined && !isUuid(p.channelId))
					throw invalid("channelId", "must be a channel id");
				const args: unknown[] = [];
				const where = ["d.organization_id = $org"];
				if (p.status) where.push(`d.status = $${args.push(p.status)}`);
				if (p.channel) where.push(`d.channel = $${args.push(p.channel)}`);
				if (p.channelId) where.push(`d.channel_id = $${args.push(p.channelId)}`);
				if (p.eventType) where.push(`d.event_type = $${args.push(p.eventType)}`);
				const t = tenantSql(ctx);
				const filter = where.join(" AND ");
				const rows = await t.rows(
					`SELECT ${R.DELIVERY_COLUMNS} FROM notifications_deliveries d WHERE ${filter}
					 ORDER BY d.created_at DESC, d.id LIMIT ${p.pageSize} OFFSET ${(p.page - 1) * p.pageSize}`,
					args
				);
				const total = Number(
					(
						await t.one<{ n: string }>(
							`SELECT count(*) AS n FROM notifications_deliveries d WHERE ${filter}`,
							args
						)
					)?.n ?? 0
				);
				return { rows, total, page: p.page, pageSize: p.pageSize, totalPages: Math.ceil(total / p.pageSize) };
			}
		}
	}
};
export default NotificationsDeliveriesService;
