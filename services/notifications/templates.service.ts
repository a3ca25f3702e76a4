// notifications-templates: the organization's own wording for an event type on a channel, in the platform's liquid
// sandbox (lib/templates.ts). Variables: the event's fields, `type`, `count` (events coalesced) and `event`. A
// template that does not parse is refused when saved; without one the catalog's default is used.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { DbMixin, type DbService } from "../../mixins/db.mixin";
import { invalid } from "../../lib/errors";
import { CATALOG, CHANNEL_KINDS, kindOf } from "./catalog";
import { parseTemplate, renderWording } from "./render";
import * as R from "./notifications.responses";
import { listOf, named } from "../../lib/response";

const EVENT_TYPE = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/;

const NotificationsTemplatesService: ServiceSchema = {
	name: "notifications-templates",
	mixins: [
		DbMixin({
			table: "notifications_templates",
			columns: ["id", "organization_id", "event_type", "channel", "subject", "body", "created_at", "updated_at"],
			writable: {
				event_type: { type: "string", min: 3, max: 200, label: "event type" },
				channel: { type: "enum", values: CHANNEL_KINDS },
				subject: { type: "string", max: 2000, optional: true },
				body: { type: "string", max: 20_000 }
			},
			tenant: true,
			searchFields: ["event_type"],
			permissions: { read: "notifications:manage", write: "notifications:manage" },
			rest: "/notifications/templates",
			entityName: "notification template",
			live: { label: "event_type" }
		})
	],

	actions: {
		// The catalog's wording per event type (what a notification says without a template): the editor's start.
		defaults: {
			rest: "GET /defaults",
			permission: "notifications:manage",
			params: { $$strict: true },
			response: listOf(
				named("NotificationTemplateDefault", {
					event_type: "string",
					label: "string",
					critical: "boolean",
					subject: "string",
					body: "string"
				})
			),
			handler() {
				return Object.keys(CATALOG)
					.sort()
					.map(type => {
						const k = kindOf(type);
						return {
							event_type: type,
							label: k.label,
							critical: !!k.critical,
							subject: k.title,
							body: k.body
						};
					});
			}
		},

		// What a template makes of a sample event, before it is saved.
		preview: {
			rest: "POST /preview",
			permission: "notifications:manage",
			params: {
				$$strict: true,
				event_type: { type: "string", min: 3, max: 200 },
				subject: { type: "string", max: 2000, optional: true },
				body: { type: "string", max: 20_000 },
				sample: { type: "object", optional: true },
				count: { type: "number", integer: true, positive: true, max: 1_000_000, optional: true }
			},
			response: named("NotificationPreview", { subject: "string", body: "string" }),
			async handler(
				ctx: Context<{ event_type: string; subject?: string; body: string; sample?: object; count?: number }>
			) {
				const p = ctx.params;
				if (!EVENT_TYPE.test(p.event_type))
					throw invalid("event_type", "is not an event type like usage.budget.exceeded");
				parseTemplate(p.subject ?? "", "subject");
				parseTemplate(p.body, "body");
				const event = { ...(p.sample ?? {}), type: p.event_type, id: "00000000-0000-0000-0000-000000000000" };
				return renderWording(event, p.count ?? 1, { subject: p.subject ?? "", body: p.body });
			}
		}
	},

	hooks: {
		before: {
			create: "checkTemplate",
			update: "checkTemplate"
		}
	},

	methods: {
		checkTemplate(this: DbService, ctx: Context<any>) {
			const p = ctx.params;
			if (p.event_type !== undefined && !EVENT_TYPE.test(p.event_type))
				throw invalid("event_type", "is not an event type like usage.budget.exceeded");
			if (p.subject !== undefined) parseTemplate(p.subject, "subject");
			if (p.body !== undefined) parseTemplate(p.body, "body");
		}
	}
};
void R;
export default NotificationsTemplatesService;
