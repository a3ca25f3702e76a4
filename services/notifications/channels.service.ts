// notifications-channels: the organization's e-mail (SMTP) and webhook channels. Their configuration names secrets
// of the secrets module (the SMTP password, the webhook's signing key) and never holds one; saving a channel checks
// the secrets exist and grants the notifications service read access to them, as the AI module does for provider
// keys. "Send a test" sends one message now and says how it went.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { authOf } from "../../lib/authz";
import { invalid, forbidden } from "../../lib/errors";
import { DbMixin, type DbService } from "../../mixins/db.mixin";
import { SENDERS, type SecretName } from "./channels";
import * as R from "./notifications.responses";

interface Self extends DbService {
	checkChannel(ctx: Context<any>): Promise<void>;
	allowSecret(ctx: Context, ref: SecretName, field: string): Promise<void>;
}

const EVENT_TYPE = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/;

const NotificationsChannelsService: ServiceSchema = {
	name: "notifications-channels",
	mixins: [
		DbMixin({
			table: "notifications_channels",
			columns: [
				"id",
				"organization_id",
				"name",
				"kind",
				"config",
				"event_types",
				"enabled",
				"created_at",
				"updated_at"
			],
			writable: {
				name: { type: "string", min: 1, max: 100, trim: true, label: "name" },
				kind: { type: "enum", values: ["email", "webhook"] },
				config: { type: "object" },
				event_types: { type: "array", items: { type: "string", max: 200 }, max: 200, optional: true },
				enabled: { type: "boolean", optional: true }
			},
			tenant: true,
			searchFields: ["name"],
			permissions: { read: "notifications:manage", write: "notifications:manage" },
			rest: "/notifications/channels",
			entityName: "notification channel",
			entity: { config: "object", event_types: { type: "array", items: "string" } },
			live: true
		})
	],

	actions: {
		// Sends a test message now: e-mail to the caller, a `notifications.test` event to a webhook.
		test: {
			rest: "POST /:id/test",
			permission: "notifications:manage",
			params: { id: "string" },
			response: R.TestResult,
			async handler(this: Self, ctx: Context<{ id: string }>) {
				const channel = await this.findScoped(ctx, ctx.params.id);
				const userId = authOf(ctx)?.userId;
				if (channel.kind === "email" && !userId) throw forbidden("a test e-mail goes to the signed-in user");
				const organizationId = channel.organization_id as string;
				return ctx.call("notifications.sendTest", { organizationId, channelId: channel.id, userId });
			}
		}
	},

	hooks: {
		before: {
			create: "checkChannel",
			update: "checkChannel"
		}
	},

	methods: {
		async checkChannel(this: Self, ctx: Context<any>) {
			const p = ctx.params;
			(p.event_types ?? []).forEach((t: string, i: number) => {
				if (!EVENT_TYPE.test(t))
					throw invalid(`event_types[${i}]`, "is not an event type like usage.budget.exceeded");
			});
			const current = p.id ? await this.findScoped(ctx, p.id) : undefined;
			if (current && p.kind !== undefined && p.kind !== current.kind)
				throw invalid("kind", "cannot change: create another channel");
			if (p.config === undefined) return;
			const sender = SENDERS[(p.kind ?? current?.kind) as "email" | "webhook"];
			p.config = sender.check(p.config);
			for (const ref of sender.secretsOf(p.config)) await this.allowSecret(ctx, ref, "config");
		},

		// The secret must exist in its environment (shared, not a project's); the notifications service may read it.
		async allowSecret(this: Self, ctx: Context, ref: SecretName, field: string) {
			const found: any[] = await ctx.call("secrets.list", { environment: ref.environment, search: ref.name });
			const secret = found.find(s => s.name === ref.name && !s.project_id);
			if (!secret) throw invalid(field, `no secret named ${ref.name} in ${ref.environment}`);
			const grants: any[] = await ctx.call("secrets.grants", { secretId: secret.id });
			if (!grants.some(g => g.grantee_type === "service" && g.grantee_id === "notifications" && !g.expires_at))
				await ctx.call("secrets.grant", {
					secretId: secret.id,
					permission: "read",
					granteeType: "service",
					granteeId: "notifications"
				});
		}
	}
};
export default NotificationsChannelsService;
