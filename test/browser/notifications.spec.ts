// The bell and the preferences page in a browser, on the embedded platform: Ana opts in to "Prompt template created"
// on the preferences page; creating a template then lights the bell's unread badge without a reload, the panel
// lists the notification, and opening it clears the badge. A critical type's boxes cannot be unticked.
import path from "path";
import { ARTIFACTS, describeWithBrowser, signIn, startUiPlatform } from "../helpers/browser";

const stamp = Date.now();
const ana = { name: "Ana", email: `ana-notify-${stamp}@example.com`, password: "correct horse battery" };

describeWithBrowser()("notifications bell and preferences (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let token = "";
	let org = "";

	beforeAll(async () => {
		ui = await startUiPlatform("notifications-browser", { timeoutMs: 15_000 });
		const r = await fetch(`${ui.base}/api/auth/register`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(ana)
		});
		const json = await r.json();
		token = json.accessToken;
		org = json.organization.id;
		await signIn(ui.page, ui.base, ana);
	}, 180_000);

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
});
