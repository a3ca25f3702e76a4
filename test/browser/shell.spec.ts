// The web IDE shell as a user meets it: the built UI served by an embedded platform process, driven in headless
// Chromium. Sign up, sign out and in, create a team, create and switch organizations, see the live connection.
// Skipped when no Chromium is installed (CHROMIUM_PATH, default /usr/bin/chromium), unless REQUIRE_BROWSER=1.
import path from "path";
import { type Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signIn, startUiPlatform } from "../helpers/browser";

const user = { name: "Ada Lovelace", email: `ada-${Date.now()}@example.com`, password: "correct horse battery" };
const ORG1 = `${user.name}'s workspace`;

describeWithBrowser()("web IDE shell (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";

	const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `shell-${name}.png`), fullPage: true });
	const toast = (text: string | RegExp) => page.getByTestId("toast").filter({ hasText: text }).first().waitFor();

	beforeAll(async () => {
		ui = await startUiPlatform("browser", { timeoutMs: 10_000 });
		({ page, base } = ui);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
	});

	test("a visitor is sent to sign-in, creates an account and lands on the dashboard", async () => {
		await page.goto(base + "/");
		await page.getByTestId("sign-in-form").waitFor();
		expect(new URL(page.url()).pathname).toBe("/sign-in");

		await page.getByTestId("to-sign-up").click();
		await page.getByTestId("sign-up-form").waitFor();
		await page.getByLabel("Name").fill(user.name);
		await page.getByLabel("Email").fill(user.email);
		// The server's validation message appears next to the field it names.
		await page.getByLabel("Password").fill("short");
		await page.getByTestId("submit").click();
		await page
			.locator(".field__error")
			.filter({ hasText: "Password must be at least 10 characters long" })
			.waitFor();
		expect(await page.getByLabel("Password").getAttribute("aria-invalid")).toBe("true");

		await page.getByLabel("Password").fill(user.password);
		await page.getByTestId("submit").click();
		await page.getByTestId("greeting").filter({ hasText: "Ada" }).waitFor();
		expect(new URL(page.url()).pathname).toBe("/");
		expect(await page.getByTestId("current-org").textContent()).toBe(ORG1);
		expect(await page.getByTestId("user-name").textContent()).toBe(user.name);
		await shot("1-dashboard");
	});

	test("signs out, is refused a wrong password, and signs back in", async () => {
		await page.getByTestId("sign-out").click();
		await page.getByTestId("sign-in-form").waitFor();
		expect(await page.evaluate(() => localStorage.getItem("coder-ide.session"))).toBeNull();

		await page.getByLabel("Email").fill(user.email);
		await page.getByLabel("Password").fill("not my password");
		await page.getByTestId("submit").click();
		await page.getByTestId("form-error").filter({ hasText: "Invalid email or password" }).waitFor();
		await shot("2-sign-in-error");

		await page.getByLabel("Password").fill(user.password);
		await page.getByTestId("submit").click();
		await page.getByTestId("greeting").filter({ hasText: "Ada" }).waitFor();
		expect(await page.getByTestId("current-org").textContent()).toBe(ORG1);
	});

	test("creates a team and adds themself as its lead", async () => {
		await page.getByTestId("nav-organization-teams").click();
		await page.getByTestId("page-title").filter({ hasText: "Teams" }).waitFor();
		await page.getByText("No teams yet").waitFor();

		// A field's `style` sizes the field in its row (the description takes twice the name's share), not the input.
		const fieldWidth = (testid: string) =>
			page.locator(".field", { has: page.getByTestId(testid) }).evaluate(el => el.getBoundingClientRect().width);
		expect(await fieldWidth("team-description")).toBeGreaterThan((await fieldWidth("team-name")) * 1.3);
		await page.getByTestId("team-name").fill("Platform");
		await page.getByTestId("team-description").fill("Runtime, build and deploy");
		await page.getByTestId("team-create").click();
		await toast("Team created");
		await page.getByTestId("team-item").filter({ hasText: "Platform" }).waitFor();
		await page.getByTestId("team-panel-name").filter({ hasText: "Platform" }).waitFor();

		await page.getByTestId("team-member-select").selectOption({ label: `${user.name} (${user.email})` });
		await page.getByTestId("team-member-role").selectOption("lead");
		await page.getByTestId("team-member-add").click();
		const row = page.getByTestId("team-member-row").filter({ hasText: user.name });
		await row.waitFor();
		expect(await row.textContent()).toContain("lead");
		await shot("3-teams");
	});

	test("adds an existing user by email and changes their role; that user sees only what the role allows", async () => {
		const grace = {
			name: "Grace Hopper",
			email: `grace-${Date.now()}@example.com`,
			password: "another horse battery"
		};
		const registered = await fetch(`${base}/api/auth/register`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(grace)
		});
		expect(registered.status).toBe(200);

		await page.getByTestId("nav-organization-members").click();
		await page.getByTestId("member-email").fill("nobody@example.com");
		await page.getByTestId("member-add").click();
		// The API names the email field, so the message stands next to it.
		await page
			.locator(".field__error")
			.filter({ hasText: /not found/i })
			.waitFor();

		await page.getByTestId("member-email").fill(grace.email);
		await page.getByTestId("member-role").selectOption("viewer");
		await page.getByTestId("member-add").click();
		await toast("Member added");
		const row = page.getByTestId("member-row").filter({ hasText: grace.email });
		expect(await row.getByTestId("member-role-select").inputValue()).toBe("viewer");

		// Grace, in her own browser, switches to Ada's organization: a viewer reads but gets no forms to change things.
		const context = await ui!.browser.newContext({ viewport: { width: 1280, height: 800 } });
		const other = await context.newPage();
		try {
			await signIn(other, base, grace);
			await other.getByTestId("org-switcher").click();
			await other.getByTestId("org-option").filter({ hasText: ORG1 }).click();
			await other.getByTestId("current-org").filter({ hasText: ORG1 }).waitFor();
			await other.getByTestId("nav-organization-teams").click();
			await other.getByTestId("team-item").filter({ hasText: "Platform" }).waitFor();
			expect(await other.getByTestId("create-team-form").count()).toBe(0);
			await other.getByTestId("nav-organization-members").click();
			await other.getByTestId("member-row").filter({ hasText: user.email }).waitFor();
			expect(await other.getByTestId("add-member-form").count()).toBe(0);
			expect(await other.getByTestId("member-role-select").count()).toBe(0);
			expect(await other.getByTestId("nav-organization-api-keys").count()).toBe(1);
			await other.screenshot({ path: path.join(ARTIFACTS, "shell-4-viewer.png"), fullPage: true });
		} finally {
			await context.close();
		}

		await row.getByTestId("member-role-select").selectOption("admin");
		await toast("Role changed");
		await page.reload();
		await page.getByTestId("member-row").filter({ hasText: grace.email }).waitFor();
		expect(
			await page
				.getByTestId("member-row")
				.filter({ hasText: grace.email })
				.getByTestId("member-role-select")
				.inputValue()
		).toBe("admin");
	});

	test("creates an API key, sees it once and can copy it", async () => {
		await page.getByTestId("nav-organization-api-keys").click();
		await page.getByTestId("api-key-name").fill("CI pipeline");
		await page.getByTestId("api-key-create").click();
		const value = await page.getByTestId("api-key-value").inputValue();
		expect(value).toMatch(/^cide_/);
		await page.getByTestId("api-key-copy").click();
		await page.getByTestId("api-key-copy").filter({ hasText: "Copied" }).waitFor();
		await shot("5-api-key-created");
		await page.getByTestId("api-key-done").click();
		const row = page.getByTestId("api-key-row").filter({ hasText: "CI pipeline" });
		await row.waitFor();
		expect(await row.textContent()).toContain("Active");
		expect(await row.textContent()).not.toContain(value);
	});

	test("creates a second organization, works in it, and switches between the two", async () => {
		await page.getByTestId("org-switcher").click();
		await page.getByTestId("org-create").click();
		await page.getByTestId("org-name").fill("Acme Robotics");
		await page.getByTestId("org-create-submit").click();
		await page.getByTestId("current-org").filter({ hasText: "Acme Robotics" }).waitFor();
		await toast("Organization created");

		// Requests now carry the new organization: its team list is its own (empty).
		await page.getByTestId("nav-organization-teams").click();
		await page.getByText("No teams yet").waitFor();
		expect(await page.getByTestId("team-item").count()).toBe(0);

		// Switch back: the first organization's team is there again.
		await page.getByTestId("org-switcher").click();
		expect(await page.getByTestId("org-option").count()).toBe(2);
		await page.getByTestId("org-option").filter({ hasText: ORG1 }).click();
		await page.getByTestId("current-org").filter({ hasText: ORG1 }).waitFor();
		await page.getByTestId("team-item").filter({ hasText: "Platform" }).waitFor();

		// And to the new one again, by keyboard.
		await page.getByTestId("org-switcher").focus();
		await page.keyboard.press("Enter");
		await page.keyboard.press("ArrowDown");
		await page.keyboard.press("Enter");
		await page.getByTestId("current-org").filter({ hasText: "Acme Robotics" }).waitFor();
		await page.getByText("No teams yet").waitFor();
		expect(await page.evaluate(() => localStorage.getItem("coder-ide.organization"))).toBeTruthy();
	});

	test("the live indicator turns on for the current organization", async () => {
		await page.getByTestId("nav-home").click();
		const indicator = page.getByTestId("live-indicator");
		try {
			await page.locator('[data-testid="live-indicator"][data-status="live"]').waitFor({ timeout: 15_000 });
			expect(await indicator.textContent()).toContain("Live");
		} finally {
			await shot("6-home-live");
		}
	});

	test("a deep link survives a reload (history routing, session kept in localStorage)", async () => {
		await page.goto(base + "/organization/members");
		await page.getByTestId("page-title").filter({ hasText: "Members" }).waitFor();
		await page.getByTestId("member-row").filter({ hasText: user.email }).waitFor();
		expect(await page.getByTestId("current-org").textContent()).toBe("Acme Robotics");
		await shot("7-members-after-reload");
	});

	test("no uncaught errors or Content-Security-Policy violations in the page", () => {
		expect(ui!.pageErrors).toEqual([]);
		expect(ui!.cspViolations).toEqual([]);
	});
});
