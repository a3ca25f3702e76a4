// The pure parts of routing: quiet hours in a user's time zone (spans past midnight, other zones) and who hears of
// an event (the user it names; for organization-level events the members whose role holds the type's permission;
// critical events naming a user reach the managers too).
import { quietEnd } from "../../services/notifications/quiet-hours";
import { recipientsOf } from "../../services/notifications/routing";
import { CATALOG, kindOf } from "../../services/notifications/catalog";
import { channelsConsumedBy, channelsOf, loadManifests, SERVICES_DIR } from "../../lib/module";
import { permissionTable } from "../../lib/authz";
import { renderWording } from "../../services/notifications/render";

const at = (iso: string) => new Date(iso);
const m = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));

describe("quiet hours", () => {
	test("a span past midnight holds until its end, in the user's zone", () => {
		// 23:30 in Berlin (UTC+1 in December) is inside 22:00-07:00; it ends at 07:00 Berlin = 06:00 UTC.
		expect(quietEnd(m("22:00"), m("07:00"), "Europe/Berlin", at("2026-12-06T22:30:00Z"))?.toISOString()).toBe(
			"2026-12-07T06:00:00.000Z"
		);
		// 12:00 Berlin is outside.
		expect(quietEnd(m("22:00"), m("07:00"), "Europe/Berlin", at("2026-12-06T11:00:00Z"))).toBeUndefined();
		// A same-day span: 13:00-14:00 in New York (UTC-5) at 13:15 local ends at 19:00 UTC.
		expect(quietEnd(m("13:00"), m("14:00"), "America/New_York", at("2026-12-06T18:15:00Z"))?.toISOString()).toBe(
			"2026-12-06T19:00:00.000Z"
		);
	});
});

describe("recipients", () => {
	const owner = { user_id: "00000000-0000-4000-8000-000000000001", role: "owner" as const };
	const admin = { user_id: "00000000-0000-4000-8000-000000000002", role: "admin" as const };
	const member = { user_id: "00000000-0000-4000-8000-000000000003", role: "member" as const };
	const viewer = { user_id: "00000000-0000-4000-8000-000000000004", role: "viewer" as const };
	const members = [owner, admin, member, viewer];
	const base = { id: "e", time: "t", organizationId: "o" };

	test("an organization-level event reaches the roles holding its permission", () => {
		const e = { ...base, type: "usage.budget.warning", scope: "organization" };
		expect(recipientsOf(e, members).sort()).toEqual([owner.user_id, admin.user_id].sort());
		const p = { ...base, type: "prompts.label.moved" };
		expect(recipientsOf(p, members).sort()).toEqual([owner.user_id, admin.user_id, member.user_id].sort());
	});

	test("an event naming a user reaches that user; a critical one the managers too; a stranger nobody", () => {
		expect(recipientsOf({ ...base, type: "ai.ratelimit.exceeded", userId: viewer.user_id }, members)).toEqual([
			viewer.user_id
		]);
		const crit = { ...base, type: "usage.quota.exceeded", scope: "user", subjectId: member.user_id };
		expect(recipientsOf(crit, members).sort()).toEqual([member.user_id, owner.user_id, admin.user_id].sort());
		const stranger = "00000000-0000-4000-8000-000000000009";
		expect(recipientsOf({ ...base, type: "ai.ratelimit.exceeded", userId: stranger }, members)).toEqual([]);
	});

	test("unknown types are opt-in; auth and secrets types are critical", () => {
		expect(kindOf("calendar.event.created")).toMatchObject({ defaults: { in_app: false, email: false } });
		expect(kindOf("secrets.secret.revealed").critical).toBe(true);
	});
});

describe("every module's events", () => {
	const manifests = loadManifests(SERVICES_DIR);
	const owner = { user_id: "00000000-0000-4000-8000-000000000001", role: "owner" as const };
	const admin = { user_id: "00000000-0000-4000-8000-000000000002", role: "admin" as const };
	const member = { user_id: "00000000-0000-4000-8000-000000000003", role: "member" as const };
	const members = [owner, admin, member];
	const base = { id: "e", time: "t", organizationId: "o" };

	test("notifications consume every channel another module publishes, the newer modules' included", () => {
		const others = channelsOf(manifests.filter(m => m.name !== "notifications")).sort();
		expect(channelsConsumedBy(manifests, "notifications").sort()).toEqual(others);
		expect(others).toEqual(
			expect.arrayContaining([
				"ai.events",
				"usage.events",
				"prompts.events",
				"embedding.events",
				"knowledge.events"
			])
		);
	});

	test("every type the catalog describes names a permission some module declares", () => {
		const declared = new Set(Object.values(permissionTable().byRole).flat());
		const undeclared = Object.entries(CATALOG).filter(([, k]) => k.permission && !declared.has(k.permission));
		expect(undeclared.map(([type, k]) => `${type}: ${k.permission}`)).toEqual([]);
	});

	test("embeddings and knowledge: their managers, opt-in but for a job's end, progress coalesced per job", () => {
		const failed = { ...base, type: "embedding.job.failed", jobId: "j1", kind: "reembed", error: "x" };
		expect(kindOf(failed.type)).toMatchObject({ permission: "embeddings:manage", defaults: { in_app: true } });
		expect(recipientsOf(failed, members).sort()).toEqual([owner.user_id, admin.user_id].sort());
		const progress = kindOf("embedding.job.progress");
		expect(progress.defaults).toEqual({ in_app: false, email: false });
		expect(progress.coalesce!({ jobId: "j1" })).toBe(progress.coalesce!({ jobId: "j1", done: 9 }));
		expect(progress.coalesce!({ jobId: "j1" })).not.toBe(progress.coalesce!({ jobId: "j2" }));
		// An article's title is for who may read its category: only knowledge managers hear of articles.
		const article = { ...base, type: "knowledge.article.created", title: "Secret plans" };
		expect(kindOf(article.type)).toMatchObject({ permission: "knowledge:manage", defaults: { in_app: false } });
		expect(recipientsOf(article, members)).not.toContain(member.user_id);
	});

	test("a type the catalog does not know is its publishing module's managers', opt-in; a module with none, admins'", () => {
		// "embedding.…" is published by the embeddings module, whose manage permission is embeddings:manage.
		expect(kindOf("embedding.index.rebuilt")).toMatchObject({
			label: "embedding.index.rebuilt",
			permission: "embeddings:manage",
			defaults: { in_app: false, email: false },
			critical: false
		});
		// A channel no manifest here publishes (a module built elsewhere, e.g. mcp.events): owners and admins.
		const later = { ...base, type: "later.server.failed" };
		expect(recipientsOf(later, members).sort()).toEqual([owner.user_id, admin.user_id].sort());
		// Security types of any module stay critical.
		expect(kindOf("later.security.alert").critical).toBe(true);
	});
});

describe("wording", () => {
	test("the catalog's default, an organization's template, the count, and a sandbox without prototypes", async () => {
		const e = { type: "ai.provider.health.changed", id: "e", providerId: "p1", status: "down" };
		expect(await renderWording(e, 1)).toEqual({ subject: "AI provider is down", body: "Provider p1 is now down." });
		expect(
			(await renderWording(e, 3, { subject: "{{ providerId }}: {{ status }}", body: "x{{ count }}" })).subject
		).toBe("p1: down (3 times)");
		const sneaky = await renderWording(e, 1, { subject: "{{ event.constructor.name }}|{{ nope }}", body: "" });
		expect(sneaky.subject).toBe("|");
	});
});
