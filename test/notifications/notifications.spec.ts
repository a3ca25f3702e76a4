// notifications on an in-process gateway with auth, secrets and the notifications module, on real PostgreSQL:
// events sent to their channels reach the inbox and the user's socket; muting, critical types, quiet hours,
// coalescing; e-mail to a real SMTP server in this process (smtp-server); webhooks signed per Standard Webhooks
// (verified with the `standardwebhooks` library), retried to a final status; tenancy and validation.
import crypto from "crypto";
import http from "http";
import type { AddressInfo } from "net";
import { SMTPServer } from "smtp-server";
import { Webhook } from "standardwebhooks";
import type { Socket } from "socket.io-client";
import { describeWith, createTestDatabase } from "../helpers/infra";
import { connect, http as req, Member, register, startGateway, TestGateway } from "../helpers/gateway";
import { waitUntil } from "../helpers/wait";
import { makeEvent } from "../../lib/events/outbox";
import { getDb } from "../../lib/db";

jest.setTimeout(60_000);

export const NOTIFICATION_FILES = [
	"services/secrets/secrets.service.ts",
	"services/notifications/notifications.service.ts",
	"services/notifications/channels.service.ts",
	"services/notifications/templates.service.ts",
	"services/notifications/preferences.service.ts",
	"services/notifications/deliveries.service.ts"
];

interface Mail {
	from: string;
	to: string[];
	text: string;
	user?: string;
}

// A real SMTP server on a free port; it requires the password it is given.
async function startSmtp(password: string) {
	const mails: Mail[] = [];
	const server = new SMTPServer({
		disabledCommands: ["STARTTLS"],
		allowInsecureAuth: true,
		authOptional: false,
		onAuth(auth, _session, cb) {
			if (auth.password === password) cb(null, { user: auth.username });
			else cb(new Error("Invalid username or password"));
		},
		onData(stream, session, cb) {
			let text = "";
			stream.on("data", (c: Buffer) => (text += c.toString()));
			stream.on("end", () => {
				mails.push({
					from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
					to: session.envelope.rcptTo.map(r => r.address),
					text,
					user: session.user as string | undefined
				});
				cb();
			});
		}
	});
	await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
	const port = (server.server.address() as AddressInfo).port;
	return { mails, port, close: () => new Promise<void>(r => server.close(() => r())) };
}

// A webhook receiver that fails the first `failFirst` requests of each message id.
async function startReceiver(failFirst = 0, alwaysFail = false) {
	const got: { headers: http.IncomingHttpHeaders; body: string }[] = [];
	const seen = new Map<string, number>();
	const server = http.createServer((rq, rs) => {
		let body = "";
		rq.on("data", c => (body += c));
		rq.on("end", () => {
			got.push({ headers: rq.headers, body });
			const id = String(rq.headers["webhook-id"]);
			const n = (seen.get(id) ?? 0) + 1;
			seen.set(id, n);
			rs.statusCode = alwaysFail || n <= failFirst ? 500 : 204;
			rs.end();
		});
	});
	await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
	const port = (server.address() as AddressInfo).port;
	return { got, url: `http://127.0.0.1:${port}/hook`, close: () => new Promise<void>(r => server.close(() => r())) };
}

describeWith(["postgres"])("notifications (in-process gateway, real PostgreSQL)", () => {
	let db: Awaited<ReturnType<typeof createTestDatabase>>;
	let gw: TestGateway;
	let a: Member; // owner of org A
	let viewer: Member; // a viewer in org A
	let b: Member; // owner of org B
	let smtp: Awaited<ReturnType<typeof startSmtp>>;
	const SMTP_PASSWORD = "smtp-pass-" + crypto.randomBytes(6).toString("hex");
	const WEBHOOK_KEY = "whsec_" + crypto.randomBytes(24).toString("base64");
	const sockets: Socket[] = [];
	const receivers: { close(): Promise<void> }[] = [];

	const api = (m: Member, method: string, path: string, body?: unknown) =>
		req(gw.port, method, `/api${path}`, { token: m.accessToken, org: m.organization.id, body });
	const send = (channel: string, type: string, data: Record<string, unknown>) => {
		const event = makeEvent(type as any, data as any);
		return (gw.broker as any).sendToChannel(channel, event).then(() => event);
	};
	const inbox = async (m: Member, q = "") => (await api(m, "GET", `/notifications${q}`)).body;
	const deliveries = async (q = "") => (await api(a, "GET", `/notifications/deliveries${q}`)).body.rows as any[];

	beforeAll(async () => {
		db = await createTestDatabase();
		smtp = await startSmtp(SMTP_PASSWORD);
		gw = await startGateway(
			{
				DATABASE_URL: db.url,
				MASTER_KEY: crypto.randomBytes(32).toString("base64"),
				NOTIFICATIONS_RETRY_BASE_MS: "50",
				NOTIFICATIONS_MAX_ATTEMPTS: "3",
				NOTIFICATIONS_POLL_MS: "50",
				NOTIFICATIONS_COALESCE_MS: "1500",
				NOTIFICATIONS_ALLOWED_PRIVATE_HOSTS: "127.0.0.1"
			},
			NOTIFICATION_FILES
		);
		a = await register(gw.port, "notify-a@example.com");
		b = await register(gw.port, "notify-b@example.com");
		const v = await register(gw.port, "notify-viewer@example.com");
		const added = await api(a, "POST", `/auth/organizations/${a.organization.id}/members`, {
			email: "notify-viewer@example.com",
			role: "viewer"
		});
		expect(added.status).toBe(200);
		const login = await req(gw.port, "POST", "/api/auth/login", {
			body: { email: "notify-viewer@example.com", password: "correct horse battery" }
		});
		viewer = { ...v, accessToken: login.body.accessToken, organization: a.organization };
		for (const [name, value] of [
			["SMTP_PASSWORD", SMTP_PASSWORD],
			["HOOK_KEY", WEBHOOK_KEY]
		]) {
			const r = await api(a, "POST", "/secrets", { environment: "production", name, value });
			expect(r.status).toBe(200);
		}
	});

	afterAll(async () => {
		sockets.forEach(s => s.close());
		await Promise.all(receivers.map(r => r.close()));
		await gw?.stop();
		await smtp?.close();
		await db?.drop();
	});

	test("a budget event reaches the inbox and the user's open socket, with the unread count; mark read", async () => {
		const socket = await connect(gw.port, { token: a.accessToken });
		sockets.push(socket);
		const pushed: any[] = [];
		socket.on("notification", p => pushed.push(p));
		const event = await send("usage.events", "usage.budget.warning", {
			organizationId: a.organization.id,
			scope: "organization",
			period: "month",
			periodStart: "2026-12-01T00:00:00Z",
			used: 80,
			limit: 100,
			budgetId: crypto.randomUUID(),
			percentage: 80
		});
		await waitUntil(
			"the pushed notification",
			async () => pushed,
			p => p.length > 0
		);
		expect(pushed[0]).toMatchObject({
			organizationId: a.organization.id,
			unread: 1,
			notification: { event_type: "usage.budget.warning", title: "Budget at 80%", count: 1 }
		});
		expect(pushed[0].notification.body).toContain("80 of 100 dollars this month (80%)");
		const page = await inbox(a);
		expect(page.rows.map((r: any) => r.data.id)).toEqual([event.id]);
		expect((await api(a, "GET", "/notifications/unread-count")).body).toEqual({ count: 1 });
		// A viewer does not hold usage:manage: an organization-level budget event is not theirs.
		expect((await inbox(viewer)).rows).toEqual([]);
		// Another organization sees nothing of it, and cannot mark it read.
		expect((await inbox(b)).rows).toEqual([]);
		expect((await api(b, "POST", `/notifications/${page.rows[0].id}/read`)).status).toBe(404);
		const read = await api(a, "POST", `/notifications/${page.rows[0].id}/read`);
		expect(read.status).toBe(200);
		expect(read.body.read_at).toBeTruthy();
		expect((await api(a, "GET", "/notifications/unread-count")).body).toEqual({ count: 0 });
		// Its in-app delivery is recorded as sent.
		const own = await api(a, "GET", `/notifications/${page.rows[0].id}/deliveries`);
		expect(own.body).toEqual([expect.objectContaining({ channel: "in_app", status: "sent", attempts: 1 })]);
	});

	test("a user who muted a type gets none of it, but still gets the critical ones", async () => {
		const muted = await api(a, "PUT", "/notifications/preferences", {
			preferences: [
				{ eventType: "usage.quota.warning", channel: "in_app", enabled: false },
				{ eventType: "usage.quota.warning", channel: "email", enabled: false }
			]
		});
		expect(muted.status).toBe(200);
		const row = muted.body.eventTypes.find((t: any) => t.type === "usage.quota.warning");
		expect(row).toMatchObject({ in_app: false, email: false, default_in_app: true });
		// Critical types cannot be muted.
		const refused = await api(a, "PUT", "/notifications/preferences", {
			preferences: [{ eventType: "usage.quota.exceeded", channel: "in_app", enabled: false }]
		});
		expect(refused.status).toBe(422);
		expect(JSON.stringify(refused.body)).toContain("preferences[0].enabled");

		const base = {
			organizationId: a.organization.id,
			scope: "user",
			subjectId: a.user.id,
			period: "day",
			periodStart: "2026-12-06T00:00:00Z",
			quotaId: crypto.randomUUID(),
			metric: "tokens"
		};
		const warnings: { id: string }[] = [];
		for (let i = 0; i < 3; i++)
			warnings.push(
				await send("usage.events", "usage.quota.warning", { ...base, used: 90, limit: 100, percentage: 90 })
			);
		const exceeded = await send("usage.events", "usage.quota.exceeded", { ...base, used: 101, limit: 100 });
		const page = await waitUntil(
			"the critical notification",
			() => inbox(a, "?unread=true"),
			p => p.rows.some((r: any) => r.event_type === "usage.quota.exceeded")
		);
		// Every event was handled, and the warnings produced nothing.
		await waitUntil(
			"all four events handled",
			async () =>
				(
					await (
						await getDb()
					).query(
						"SELECT event_id FROM processed_events WHERE consumer_group = 'notifications' AND event_id = ANY($1)",
						[[...warnings, exceeded].map(e => e.id)]
					)
				).rowCount,
			n => n === 4
		);
		expect(
			(await inbox(a, "?unread=true")).rows.filter((r: any) => r.event_type === "usage.quota.warning")
		).toEqual([]);
		expect(page.rows.filter((r: any) => r.event_type === "usage.quota.warning")).toEqual([]);
		expect(page.rows.find((r: any) => r.event_type === "usage.quota.exceeded")).toMatchObject({ critical: true });
	});

	test("e-mail reaches the SMTP server with the password from secrets; the password is stored nowhere else", async () => {
		const bad = await api(a, "POST", "/notifications/channels", {
			name: "mail-bad",
			kind: "email",
			config: { host: "127.0.0.1", port: smtp.port, from: "not an address" }
		});
		expect(bad.status).toBe(422);
		expect(JSON.stringify(bad.body)).toContain("config.from");
		const missing = await api(a, "POST", "/notifications/channels", {
			name: "mail-missing",
			kind: "email",
			config: {
				host: "127.0.0.1",
				port: smtp.port,
				from: "ide@example.com",
				username: "ide",
				password: { name: "NOPE" }
			}
		});
		expect(missing.status).toBe(422);
		const created = await api(a, "POST", "/notifications/channels", {
			name: "mail",
			kind: "email",
			config: {
				host: "127.0.0.1",
				port: smtp.port,
				from: "ide@example.com",
				username: "ide",
				password: { environment: "production", name: "SMTP_PASSWORD" }
			}
		});
		expect(created.status).toBe(200);
		const test = await api(a, "POST", `/notifications/channels/${created.body.id}/test`);
		expect(test.body).toEqual({ ok: true });
		await waitUntil(
			"the test mail",
			async () => smtp.mails,
			m => m.length === 1
		);
		expect(smtp.mails[0]).toMatchObject({ to: ["notify-a@example.com"], user: "ide" });
		expect(smtp.mails[0].text).toContain("Subject: Test notification");

		await send("usage.events", "usage.budget.exceeded", {
			organizationId: a.organization.id,
			scope: "organization",
			period: "month",
			periodStart: "2026-12-01T00:00:00Z",
			used: 120,
			limit: 100,
			budgetId: crypto.randomUUID()
		});
		await waitUntil(
			"the budget mail",
			async () => smtp.mails,
			m => m.length === 2
		);
		expect(smtp.mails[1].text).toContain("Subject: Budget exceeded");
		expect(smtp.mails[1].text).toContain("120 of 100 dollars");
		const sent = await waitUntil(
			"the e-mail delivery marked sent",
			() => deliveries("?channel=email"),
			rows => rows.some(r => r.status === "sent")
		);
		expect(sent[0]).toMatchObject({ event_type: "usage.budget.exceeded", attempts: 1, last_error: null });

		const dump = await (
			await getDb()
		).query(
			`SELECT (SELECT string_agg(config::text, '') FROM notifications_channels) ||
			        (SELECT string_agg(event::text || coalesce(last_error, ''), '') FROM notifications_deliveries) AS all`
		);
		expect(dump.rows[0].all).not.toContain(SMTP_PASSWORD);
		expect(gw.lines.join("\n")).not.toContain(SMTP_PASSWORD);
	});

	test("webhooks are signed per Standard Webhooks; retries end sent or failed, the failure an event", async () => {
		const flaky = await startReceiver(2);
		const dead = await startReceiver(0, true);
		receivers.push(flaky, dead);
		const hook = async (name: string, url: string) => {
			const r = await api(a, "POST", "/notifications/channels", {
				name,
				kind: "webhook",
				config: { url, secret: { name: "HOOK_KEY" } },
				event_types: ["ai.provider.health.changed"]
			});
			expect(r.status).toBe(200);
			return r.body.id as string;
		};
		const flakyId = await hook("flaky", flaky.url);
		const deadId = await hook("dead", dead.url);
		const event = await send("ai.events", "ai.provider.health.changed", {
			organizationId: a.organization.id,
			providerId: "p-1",
			status: "down"
		});
		const final = await waitUntil(
			"both webhook deliveries final",
			() => deliveries("?channel=webhook"),
			rows => rows.filter(r => r.status === "sent" || r.status === "failed").length === 2,
			30_000
		);
		expect(final.find(r => r.channel_id === flakyId)).toMatchObject({ status: "sent", attempts: 3 });
		expect(final.find(r => r.channel_id === deadId)).toMatchObject({
			status: "failed",
			attempts: 3,
			last_error: expect.stringContaining("HTTP 500")
		});
		// Three tries each, one id across the retries, every signature valid under the spec's library.
		const verifier = new Webhook(WEBHOOK_KEY);
		for (const r of [flaky, dead]) {
			expect(r.got).toHaveLength(3);
			expect(new Set(r.got.map(g => g.headers["webhook-id"])).size).toBe(1);
			for (const g of r.got) {
				const payload: any = verifier.verify(g.body, g.headers as Record<string, string>);
				expect(payload).toMatchObject({
					type: "ai.provider.health.changed",
					data: { id: event.id, providerId: "p-1", title: "AI provider is down" }
				});
			}
		}
		// A tampered body does not verify.
		const g = flaky.got[0];
		expect(() => verifier.verify(g.body.replace("down", "up!!"), g.headers as Record<string, string>)).toThrow();
		const failed = await waitUntil(
			"notifications.delivery.failed in the outbox",
			async () =>
				(await (await getDb()).query("SELECT payload FROM outbox WHERE channel = 'notifications.events'")).rows,
			rows => rows.length > 0
		);
		expect(failed[0].payload).toMatchObject({ type: "notifications.delivery.failed", channel: "webhook" });
		// The signing key is in none of the module's rows.
		const rows = await (await getDb()).query("SELECT config::text AS c FROM notifications_channels");
		expect(rows.rows.map(r => r.c).join("")).not.toContain(WEBHOOK_KEY.slice(6));
	});

	test("repeated rate-limit events coalesce into one notification with a count; webhooks get the first and a digest", async () => {
		const receiver = await startReceiver();
		receivers.push(receiver);
		const r = await api(a, "POST", "/notifications/channels", {
			name: "digest",
			kind: "webhook",
			config: { url: receiver.url, secret: { name: "HOOK_KEY" } },
			event_types: ["ai.ratelimit.exceeded"]
		});
		expect(r.status).toBe(200);
		for (let i = 0; i < 5; i++)
			await send("ai.events", "ai.ratelimit.exceeded", {
				organizationId: a.organization.id,
				userId: a.user.id,
				scope: "user"
			});
		const page = await waitUntil(
			"one coalesced notification",
			() => inbox(a, "?unread=true"),
			p => p.rows.some((x: any) => x.event_type === "ai.ratelimit.exceeded" && x.count === 5)
		);
		const n = page.rows.filter((x: any) => x.event_type === "ai.ratelimit.exceeded");
		expect(n).toHaveLength(1);
		expect(n[0].title).toBe("AI rate limit reached (user) (5 times)");
		// The first went at once; the four after it within the window, as one digest when the window closed.
		await waitUntil(
			"the first webhook and the digest",
			async () => receiver.got,
			g => g.length === 2
		);
		const bodies = receiver.got.map(g => JSON.parse(g.body).data);
		expect(bodies.map(b => b.count)).toEqual([1, 4]);
		expect(bodies[1].title).toBe("AI rate limit reached (user) (4 times)");
	});

	test("quiet hours hold e-mail until they end; templates word notifications; validation names fields", async () => {
		const everyMinute = { timeZone: "Pacific/Kiritimati", start: "00:00", end: "23:59" };
		const set = await api(a, "PUT", "/notifications/preferences", {
			quietHours: everyMinute,
			preferences: [
				{ eventType: "prompts.version.published", channel: "in_app", enabled: true },
				{ eventType: "prompts.version.published", channel: "email", enabled: true }
			]
		});
		expect(set.status).toBe(200);
		expect(set.body.quietHours).toEqual(everyMinute);
		const tpl = await api(a, "POST", "/notifications/templates", {
			event_type: "prompts.version.published",
			channel: "in_app",
			subject: "{{ name }} v{{ version }} is out",
			body: "{% if version > 1 %}An update.{% else %}The first one.{% endif %}"
		});
		expect(tpl.status).toBe(200);
		const broken = await api(a, "POST", "/notifications/templates", {
			event_type: "prompts.label.moved",
			channel: "in_app",
			body: "{% if %}"
		});
		expect(broken.status).toBe(422);
		expect(JSON.stringify(broken.body)).toContain("body");
		await send("prompts.events", "prompts.version.published", {
			organizationId: a.organization.id,
			templateId: crypto.randomUUID(),
			name: "greeter",
			versionId: crypto.randomUUID(),
			version: 2
		});
		const page = await waitUntil(
			"the prompt notification",
			() => inbox(a),
			p => p.rows.some((r: any) => r.event_type === "prompts.version.published")
		);
		expect(page.rows.find((r: any) => r.event_type === "prompts.version.published")).toMatchObject({
			title: "greeter v2 is out",
			body: "An update."
		});
		const held = await waitUntil(
			"the held e-mail delivery",
			() => deliveries("?eventType=prompts.version.published&channel=email"),
			rows => rows.length === 1
		);
		expect(held[0].status).toBe("pending");
		expect(new Date(held[0].next_attempt_at).getTime()).toBeGreaterThan(Date.now() + 60_000);

		const bad = await api(viewer, "PUT", "/notifications/preferences", {
			quietHours: { timeZone: "Mars/Olympus", start: "22:00", end: "07:00" }
		});
		expect(bad.status).toBe(422);
		expect(JSON.stringify(bad.body)).toContain("quietHours.timeZone");
		const badChannel = await api(a, "POST", "/notifications/channels", {
			name: "x",
			kind: "webhook",
			config: { url: "ftp://example.com", secret: { name: "HOOK_KEY" } }
		});
		expect(badChannel.status).toBe(422);
		expect(JSON.stringify(badChannel.body)).toContain("config.url");
		// Managing channels is an admin's; a viewer is refused.
		expect((await api(viewer, "GET", "/notifications/channels")).status).toBe(403);
		// Another organization sees none of A's channels or deliveries.
		expect((await api(b, "GET", "/notifications/channels")).body.rows).toEqual([]);
		expect((await api(b, "GET", "/notifications/deliveries")).body.rows).toEqual([]);
	});

	test("the newer modules' events are routed: a job's end on by default, a type the catalog lacks opt-in", async () => {
		const processed = (ids: string[]) =>
			waitUntil(
				"the events handled",
				async () =>
					(
						await (
							await getDb()
						).query(
							"SELECT 1 FROM processed_events WHERE consumer_group = 'notifications' AND event_id = ANY($1)",
							[ids]
						)
					).rowCount,
				n => n === ids.length
			);
		const org = a.organization.id;
		const failed = await send("embedding.events", "embedding.job.failed", {
			organizationId: org,
			jobId: crypto.randomUUID(),
			collectionId: null,
			kind: "reembed",
			error: "model gone"
		});
		// Not in the catalog: the knowledge module's managers may opt in; nobody hears of it before.
		const unknown = { organizationId: org, articleId: crypto.randomUUID() };
		const first = await send("knowledge.events", "knowledge.article.archived", unknown);
		await processed([failed.id, first.id]);
		const page = await inbox(a);
		expect(page.rows.find((r: any) => r.data.id === failed.id)).toMatchObject({
			title: "Embedding job (reembed) failed",
			body: "model gone"
		});
		expect(page.rows.some((r: any) => r.event_type === "knowledge.article.archived")).toBe(false);
		expect((await inbox(viewer)).rows.some((r: any) => r.data.id === failed.id)).toBe(false);

		for (const m of [a, viewer]) {
			const optIn = await api(m, "PUT", "/notifications/preferences", {
				preferences: [{ eventType: "knowledge.article.archived", channel: "in_app", enabled: true }]
			});
			expect(optIn.status).toBe(200);
		}
		const second = await send("knowledge.events", "knowledge.article.archived", unknown);
		await processed([second.id]);
		expect((await inbox(a)).rows.find((r: any) => r.data.id === second.id)).toMatchObject({
			event_type: "knowledge.article.archived",
			title: "knowledge.article.archived"
		});
		// The viewer opted in too, but does not hold knowledge:manage.
		expect((await inbox(viewer)).rows.some((r: any) => r.data.id === second.id)).toBe(false);

		// Mark all read: every unread notification of the caller in this organization, nobody else's.
		const unread = (m: Member) => api(m, "GET", "/notifications/unread-count").then(r => r.body.count);
		const before = await unread(a);
		expect(before).toBeGreaterThan(0);
		const viewerBefore = await unread(viewer);
		const all = await api(a, "POST", "/notifications/read-all");
		expect(all.status).toBe(200);
		expect(all.body).toEqual({ count: before });
		expect(await unread(a)).toBe(0);
		expect((await inbox(a, "?unread=true")).rows).toEqual([]);
		expect(await unread(viewer)).toBe(viewerBefore);
	});
});
