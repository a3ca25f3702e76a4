// Invitations as people meet them: an owner makes a link on the Members page; someone without an account opens it
// in another browser, signs up with the invited email and lands in the organization with the invited role.
import path from "path";
import { type Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, signUp, startUiPlatform } from "../helpers/browser";

const owner = { name: "Grace Hopper", email: `grace-${Date.now()}@example.com`, password: "correct horse battery" };
const invitee = { name: "Alan Turing", email: `alan-${Date.now()}@example.com`, password: "another good passphrase" };

describeWithBrowser()("invitations (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";

	beforeAll(async () => {
		ui = await startUiPlatform("invitations", { timeoutMs: 10_000 });
		({ page, base } = ui);
		await signUp(page, base, owner);
	}, 240_000);

	afterAll(async () => {
		await ui?.stop();
	});

	test("a link made on the Members page signs a new person up into the organization with the role chosen", async () => {
		await page.goto(base + "/organization/members");
		await page.getByTestId("invite-form").waitFor();
		await page.getByTestId("invite-email").fill(invitee.email);
		await page.getByTestId("invite-form").getByLabel("Role").selectOption("viewer");
		await page.getByTestId("invite-create").click();
		const link = await page.getByTestId("invite-link").inputValue();
		expect(link).toMatch(new RegExp(`^${base}/invitations/[A-Za-z0-9_-]{20,}$`));
		await page.getByTestId("invite-list").filter({ hasText: invitee.email }).waitFor();
		await page.screenshot({ path: path.join(ARTIFACTS, "invitations-1-members.png"), fullPage: true });

		const other = ui!.watch(
			await (await ui!.browser.newContext({ viewport: { width: 390, height: 844 } })).newPage()
		);
		await other.goto(link);
		await other.getByTestId("invitation-sign-up").waitFor();
		expect(await other.getByRole("heading", { level: 1 }).textContent()).toContain(`${owner.name}'s workspace`);
		expect(await other.getByTestId("email").inputValue()).toBe(invitee.email);
		await other.screenshot({ path: path.join(ARTIFACTS, "invitations-2-accept-phone.png"), fullPage: true });
		await other.getByLabel("Name").fill(invitee.name);
		await other.getByLabel("Password").fill(invitee.password);
		await other.getByTestId("submit").click();
		await other.getByTestId("greeting").filter({ hasText: "Alan" }).waitFor();
		expect(await other.getByTestId("current-org").textContent()).toBe(`${owner.name}'s workspace`);

		// The link works once.
		await other.goto(link);
		await other.getByTestId("invitation-problem").waitFor();

		await page.reload();
		await page.getByTestId("invite-form").waitFor();
		await page.getByText("No pending invitations.").waitFor();
		expect(await page.locator("body").textContent()).toContain(invitee.email);
		expect(ui!.pageErrors).toEqual([]);
	});
});
