// notifications-preferences: the caller's own choices, per event type and channel (in-app, e-mail), and quiet hours
// in their time zone. The matrix lists every type the catalog knows, those the organization has templates for and
// those the caller chose before; critical ones show on and cannot be turned off.
import type { Context } from "moleculer";
import type { ServiceSchema } from "../../lib/schema";
import { authOf } from "../../lib/authz";
import { tenantSql, type TenantSql } from "../../lib/db/tenant";
import { forbidden, invalid } from "../../lib/errors";
import { announceChange } from "../../lib/live";
import { CATALOG, kindOf, USER_CHANNELS, type UserChannel } from "./catalog";
import { checkQuietHours, fromMinute, toMinute, type QuietHours } from "./quiet-hours";
import * as R from "./notifications.responses";

const EVENT_TYPE = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$/;

interface Choice {
	eventType: string;
	channel: UserChannel;
	enabled: boolean;
}

function callerOf(ctx: Context) {
	const auth = authOf(ctx);
	if (!auth?.userId) throw forbidden("preferences belong to a signed-in user");
	return auth.userId;
}

async function matrix(t: TenantSql, user: string) {
	const prefs = await t.rows<{ event_type: string; channel: UserChannel; enabled: boolean }>(
		"SELECT event_type, channel, enabled FROM notifications_preferences WHERE organization_id = $org AND user_id = $1",
		[user]
	);
	const templated = await t.rows<{ event_type: string }>(
		"SELECT DISTINCT event_type FROM notifications_templates WHERE organization_id = $org"
	);
	const types = [
		...new Set([...Object.keys(CATALOG), ...templated.map(r => r.event_type), ...prefs.map(p => p.event_type)])
	].sort();
	const quiet = await t.one<{ time_zone: string; start_minute: number; end_minute: number }>(
		"SELECT time_zone, start_minute, end_minute FROM notifications_quiet_hours WHERE organization_id = $org AND user_id = $1",
		[user]
	);
	return {
		eventTypes: types.map(type => {
			const k = kindOf(type);
			const chosen = (c: UserChannel) =>
				!!k.critical || (prefs.find(p => p.event_type === type && p.channel === c)?.enabled ?? k.defaults[c]);
			return {
				type,
				label: k.label,
				critical: !!k.critical,
				coalesces: !!k.coalesce,
				in_app: chosen("in_app"),
				email: chosen("email"),
				default_in_app: k.defaults.in_app,
				default_email: k.defaults.email
			};
		}),
		quietHours: quiet
			? { timeZone: quiet.time_zone, start: fromMinute(quiet.start_minute), end: fromMinute(quiet.end_minute) }
			: null
	};
}

const NotificationsPreferencesService: ServiceSchema = {
	name: "notifications-preferences",
	settings: { rest: "/notifications/preferences" },

	actions: {
		get: {
			rest: "GET /",
			permission: "notifications:read",
			response: R.Preferences,
			async handler(ctx: Context) {
				return matrix(tenantSql(ctx), callerOf(ctx));
			}
		},

		// Replaces the choices given (others stay); `quietHours: null` removes them.
		update: {
			rest: "PUT /",
			permission: "notifications:read",
			params: {
				$$strict: true,
				preferences: {
					type: "array",
					optional: true,
					max: 1000,
					items: {
						type: "object",
						strict: true,
						props: {
							eventType: { type: "string", min: 3, max: 200 },
							channel: { type: "enum", values: USER_CHANNELS },
							enabled: "boolean"
						}
					}
				},
				quietHours: {
					type: "object",
					optional: true,
					nullable: true,
					strict: true,
					props: { timeZone: { type: "string", max: 100 }, start: "string", end: "string" }
				}
			},
			response: R.Preferences,
			async handler(ctx: Context<{ preferences?: Choice[]; quietHours?: QuietHours | null }>) {
				const user = callerOf(ctx);
				const { preferences = [], quietHours } = ctx.params;
				preferences.forEach((p, i) => {
					if (!EVENT_TYPE.test(p.eventType))
						throw invalid(`preferences[${i}].eventType`, "is not an event type like usage.budget.exceeded");
					if (kindOf(p.eventType).critical && !p.enabled)
						throw invalid(`preferences[${i}].enabled`, `${p.eventType} is critical and cannot be muted`);
				});
				if (quietHours) checkQuietHours(quietHours);
				const t = tenantSql(ctx);
				await t.transaction(async tx => {
					for (const p of preferences)
						await tx.query(
							`INSERT INTO notifications_preferences (organization_id, user_id, event_type, channel, enabled)
							 VALUES ($org, $1, $2, $3, $4) ON CONFLICT (organization_id, user_id, event_type, channel)
							 DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now()`,
							[user, p.eventType, p.channel, p.enabled]
						);
					if (quietHours === null)
						await tx.query(
							"DELETE FROM notifications_quiet_hours WHERE organization_id = $org AND user_id = $1",
							[user]
						);
					else if (quietHours)
						await tx.query(
							`INSERT INTO notifications_quiet_hours (organization_id, user_id, time_zone, start_minute, end_minute)
							 VALUES ($org, $1, $2, $3, $4) ON CONFLICT (organization_id, user_id) DO UPDATE SET
							 time_zone = EXCLUDED.time_zone, start_minute = EXCLUDED.start_minute,
							 end_minute = EXCLUDED.end_minute, updated_at = now()`,
							[user, quietHours.timeZone, toMinute(quietHours.start), toMinute(quietHours.end)]
						);
				});
				announceChange(this.broker, ctx, {
					entity: "notifications-preferences",
					noun: "notification preferences",
					id: user,
					action: "updated",
					permission: "notifications:read",
					ownerId: user
				});
				return matrix(t, user);
			}
		}
	}
};
export default NotificationsPreferencesService;
