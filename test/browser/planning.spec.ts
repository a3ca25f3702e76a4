// The planning UI in headless Chromium: tasks on the kanban board, a blocked task's drag to "In Progress" refused
// with its blocker named, accepted once the blocker is dragged to "Done"; a plan approved, edited (needs approval
// again) and approved again. Skipped when no Chromium is installed, unless REQUIRE_BROWSER=1.
import path from "path";
import { type Page } from "playwright-core";
import { ARTIFACTS, describeWithBrowser, pageApi, signUp, startUiPlatform } from "../helpers/browser";

const owner = {
	name: "Ada Lovelace",
	email: `ada-planning-${Date.now()}@example.com`,
	password: "correct horse battery"
};

describeWithBrowser()("planning UI (browser)", () => {
	let ui: Awaited<ReturnType<typeof startUiPlatform>> | undefined;
	let page: Page;
	let base = "";
	const column = (name: string) => page.locator(`.column[data-state="${name}"]`);
	const card = (title: string) => page.locator(".card", { hasText: title });

	beforeAll(async () => {
		ui = await startUiPlatform("planning-browser", { timeoutMs: 15_000 });
		({ page, base } = ui);
	}, 180_000);

	afterAll(async () => {
		await ui?.stop();
	});

	test("board: a blocked task cannot start until its blocker is done", async () => {
		await signUp(page, base, owner);
		await page.getByTestId("nav-planning").click();
		for (const title of ["Write docs", "Ship release"]) {
			await page.getByLabel("New entity title").fill(title);
			await page.getByRole("button", { name: "Add", exact: true }).click();
			await column("Backlog").locator(".card", { hasText: title }).waitFor();
		}
		const { body: list } = await pageApi(page, "GET", "/api/planning/entities?pageSize=100");
		const id = (t: string) => list.rows.find((r: any) => r.title === t).id;
		expect(
			(
				await pageApi(page, "POST", "/api/planning/relations", {
					kind: "blocks",
					source_id: id("Write docs"),
					target_id: id("Ship release")
				})
			).status
		).toBe(200);

		await card("Ship release").dragTo(column("In Progress"));
		await page.getByRole("alert").filter({ hasText: "blocked by" }).filter({ hasText: "Write docs" }).waitFor();
		await column("Backlog").locator(".card", { hasText: "Ship release" }).waitFor();

		await card("Write docs").dragTo(column("Done"));
		await column("Done").locator(".card", { hasText: "Write docs" }).waitFor();
		await card("Ship release").dragTo(column("In Progress"));
		await column("In Progress").locator(".card", { hasText: "Ship release" }).waitFor();

		await card("Ship release").click();
		await page.locator(".entity-detail").filter({ hasText: "blocked by Write docs" }).waitFor();
		await page.screenshot({ path: path.join(ARTIFACTS, "planning-board.png"), fullPage: true });
	});

	test("plans: approve, edit (needs approval again), approve", async () => {
		await page.getByRole("button", { name: "Plans" }).click();
		await page.getByLabel("New plan title").fill("Release 1.0");
		await page.getByRole("button", { name: "New plan" }).click();
		const approval = page.locator(".approval");
		await approval.filter({ hasText: "not approved" }).waitFor();
		await page.getByRole("button", { name: "Approve" }).click();
		await approval.filter({ hasText: "approved" }).filter({ hasNotText: "not" }).waitFor();
		await page.getByRole("button", { name: "Add step" }).click();
		await page.getByRole("button", { name: "Save plan" }).click();
		await approval.filter({ hasText: "needs approval" }).waitFor();
		await page.getByRole("button", { name: "Approve" }).click();
		await approval.filter({ hasText: "Revision 2 — approved" }).waitFor();
		await page.screenshot({ path: path.join(ARTIFACTS, "planning-plan.png"), fullPage: true });
	});
});
