// The bell and the preferences page in a browser, on the embedded platform: Ana opts in to "Prompt template created"
// on the preferences page; creating a template then lights the bell's unread badge without a reload, the panel
// lists the notification, and opening it clears the badge. A critical type's boxes cannot be unticked. Then the
// templates page: a body that does not parse is named beside its field, the live preview renders the sample, and the
// saved template words the next notification. Last, the channels page: a webhook naming a vault secret, and "Send a
// test" reaches a local receiver with a signature the Standard Webhooks library verifies.
import crypto from "crypto";
import http from "http";
import path from "path";
import type { AddressInfo } from "net";
import { Webhook } from "standardwebhooks";
import { ARTIFACTS, describeWithBrowser, signIn, startUiPlatform } from "../helpers/browser";

const stamp = Date.now();
const ana = { name: "Ana", email: `ana-notify-${stamp}@example.com`, password: "correct horse battery" };

describeWithBrowser()("notifications bell and preferences (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let token = "";
	let org = "";

	beforeAll(async () => {
		ui = await startUiPlatform("notifications-browser", {
			timeoutMs: 15_000,
			env: { NOTIFICATIONS_ALLOWED_PRIVATE_HOSTS: "127.0.0.1" }
		});
		const r = await fetch(`${ui.base}/api/auth/register`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(ana)
		});
		const json = await r.json();
		token = json.accessToken;
		org = json.organization.id;
		await signIn(ui.page, ui.base, ana);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
	});

	test("opting in on the preferences page, then a live notification on the bell; opening it reads it", async () => {
		const page = ui!.page;
		await page.getByTestId("live-indicator").filter({ hasText: "Live" }).waitFor();
		const bell = page.getByTestId("notifications-bell");
		await bell.waitFor();
		expect(await page.getByTestId("notifications-unread").count()).toBe(0);

		await bell.click();
		await page.getByTestId("notifications-panel").filter({ hasText: "Nothing yet." }).waitFor();
		await page.getByTestId("notifications-preferences-link").click();
		await page.getByTestId("page-title").filter({ hasText: "Notification preferences" }).waitFor();
		const critical = page.getByTestId("pref-usage.budget.exceeded-in_app");
		expect(await critical.isChecked()).toBe(true);
		expect(await critical.isDisabled()).toBe(true);
		const optIn = page.getByTestId("pref-prompts.template.created-in_app");
		expect(await optIn.isChecked()).toBe(false);
		await optIn.check();
		await page.getByTestId("preferences-save").click();
		await page.getByTestId("toast").filter({ hasText: "Preferences saved" }).waitFor();
		await page.screenshot({ path: path.join(ARTIFACTS, "notifications-preferences.png") });

		const created = await fetch(`${ui!.base}/api/prompts`, {
			method: "POST",
			headers: { authorization: `Bearer ${token}`, "x-organization-id": org, "content-type": "application/json" },
			body: JSON.stringify({ name: "greeter", messages: [{ role: "user", content: "Hello there" }] })
		});
		expect(created.status).toBe(200);
		await page.getByTestId("notifications-unread").filter({ hasText: "1" }).waitFor();
		await bell.click();
		const item = page.getByTestId("notification").filter({ hasText: "Prompt template greeter created" });
		await item.waitFor();
		await page.screenshot({ path: path.join(ARTIFACTS, "notifications-bell.png") });
		await item.click();
		await page.getByTestId("notifications-unread").waitFor({ state: "detached" });
		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});

	test("templates page: a broken body is named beside the field, the live preview renders, the template words the next one", async () => {
		const page = ui!.page;
		await page.goto(`${ui!.base}/notifications/templates`);
		await page.getByTestId("page-title").filter({ hasText: "Notification templates" }).waitFor();
		await page.getByTestId("template-new").click();
		const editor = page.getByTestId("template-editor");
		await editor.waitFor();
		await page.getByTestId("template-event-type").fill("prompts.template.created");
		// The catalog's wording is the start.
		await page.getByTestId("template-from-default").click();
		expect(await page.getByTestId("template-subject").inputValue()).toBe("Prompt template {{ name }} created");
		// A body that does not parse: the preview's refusal beside Body.
		await page.getByTestId("template-body").fill("{% if %}");
		await editor.locator(".field--invalid").filter({ hasText: "Body" }).getByRole("alert").waitFor();
		await page.getByTestId("template-subject").fill("New prompt: {{ name }}");
		await page
			.getByTestId("template-body")
			.fill("{% if shared %}Shared with everyone.{% else %}Ours only.{% endif %}");
		await page.getByTestId("template-sample").fill(JSON.stringify({ name: "greeter", shared: false }));
		await page.getByTestId("template-preview-subject").filter({ hasText: "New prompt: greeter" }).waitFor();
		await page.getByTestId("template-preview-body").filter({ hasText: "Ours only." }).waitFor();
		expect(await editor.locator(".field--invalid").count()).toBe(0);
		await page.screenshot({ path: path.join(ARTIFACTS, "notifications-templates.png") });
		await page.getByTestId("template-save").click();
		await page.getByTestId("toast").filter({ hasText: "Template saved" }).waitFor();
		await page.getByTestId("notification-template").filter({ hasText: "prompts.template.created" }).waitFor();

		// The next prompt template's notification (opted in above) is worded by it.
		const created = await fetch(`${ui!.base}/api/prompts`, {
			method: "POST",
			headers: { authorization: `Bearer ${token}`, "x-organization-id": org, "content-type": "application/json" },
			body: JSON.stringify({ name: "farewell", messages: [{ role: "user", content: "Goodbye" }] })
		});
		expect(created.status).toBe(200);
		await page.getByTestId("notifications-unread").filter({ hasText: "1" }).waitFor();
		await page.getByTestId("notifications-bell").click();
		await page.getByTestId("notification").filter({ hasText: "New prompt: farewell" }).waitFor();
		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});

	test('channels page: a webhook naming a vault secret, and "Send a test" reaches it signed', async () => {
		const page = ui!.page;
		const key = "whsec_" + crypto.randomBytes(24).toString("base64");
		const secret = await fetch(`${ui!.base}/api/secrets`, {
			method: "POST",
			headers: { authorization: `Bearer ${token}`, "x-organization-id": org, "content-type": "application/json" },
			body: JSON.stringify({ environment: "production", name: "HOOK_KEY", value: key })
		});
		expect(secret.status).toBe(200);
		const got: { headers: http.IncomingHttpHeaders; body: string }[] = [];
		const receiver = http.createServer((rq, rs) => {
			let body = "";
			rq.on("data", c => (body += c));
			rq.on("end", () => {
				got.push({ headers: rq.headers, body });
				rs.statusCode = 204;
				rs.end();
			});
		});
		await new Promise<void>(r => receiver.listen(0, "127.0.0.1", r));
		try {
			const port = (receiver.address() as AddressInfo).port;
			await page.goto(`${ui!.base}/notifications/channels`);
			await page.getByTestId("page-title").filter({ hasText: "Notification channels" }).waitFor();
			await page.getByTestId("channel-kind").selectOption("webhook");
			await page.getByTestId("channel-name").fill("Ops hook");
			await page.getByTestId("channel-url").fill(`http://127.0.0.1:${port}/hook`);
			await page.getByTestId("channel-secret").fill("HOOK_KEY");
			await page.getByTestId("channel-add").click();
			const row = page.getByTestId("notification-channel").filter({ hasText: "Ops hook" });
			await row.waitFor();
			await row.getByTestId("channel-test").click();
			await page.getByTestId("toast").filter({ hasText: "Test sent" }).waitFor();
			expect(got).toHaveLength(1);
			const h = got[0].headers;
			const verified = new Webhook(key).verify(got[0].body, {
				"webhook-id": String(h["webhook-id"]),
				"webhook-timestamp": String(h["webhook-timestamp"]),
				"webhook-signature": String(h["webhook-signature"])
			}) as { type: string };
			expect(verified.type).toBe("notifications.test");
			await page.screenshot({ path: path.join(ARTIFACTS, "notifications-channels.png") });
		} finally {
			await new Promise<void>(r => receiver.close(() => r()));
		}
		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});
});
